"""Write one example file per document type meshnode emits, under ``docs/examples/``.

Every document is built by the real protocol code with fixed keys and times, so the output is
deterministic: ``tests/protocol/test_jsonld.py`` checks the committed files equal what this
script produces now, and expands each one with a JSON-LD processor.

Usage: ``python -m scripts.make_examples`` from the repository root (so this checkout's
``meshnode`` is the one imported).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from meshnode.protocol import deals, queue_wire
from meshnode.protocol import iou as p
from meshnode.protocol.activities import (
    ActorKeys,
    build_actor,
    collection_page,
    follow_activity,
    listing_activity,
    ordered_collection,
)
from meshnode.protocol.direct_messages import build_direct_note, create_activity
from meshnode.protocol.ledger import (
    CurrencyTerms,
    TransferTerms,
    build_decision,
    build_event,
    build_request,
)
from meshnode.protocol.listings import (
    CurrencyRef,
    ImageRef,
    build_proposal,
    build_tombstone,
    parse_listing_input,
)
from meshnode.protocol.multikey import ed25519_public_to_multikey
from meshnode.protocol.notes import (
    NoteSettings,
    build_note,
    note_activity,
    note_id_for,
    note_tombstone,
)
from meshnode.protocol.proofs import create_proof
from meshnode.protocol.timefmt import format_utc
from meshnode.services.deal_payments import build_notice

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "docs" / "examples"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
# Fixed example keys (never used by a real node): Ed25519 seeds, and one RSA public key.
ALICE_SEED = bytes(range(32))
NODE_SEED = bytes(range(32, 64))
PEER_SEED = bytes(range(64, 96))
A = "https://a.example"
B = "https://b.example"
ALICE = f"{A}/users/alice"
BOB = f"{B}/users/bob"
GROUP_A = f"{A}/actor"
GROUP_B = f"{B}/actor"
RSA_PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqmIDU0An0T27LRpytme/
CV5hZlyJhsBOAYNyCoypJ1Rw7PQyLLmC2Affm8zkpI0TLpzewqRb//sWLle0Y7Ky
/kxQKg90PwED8u3lJCTm6JL4CGlgYMqsrlNKhZMufSBjofbcy/QoGZZ7DJ5jbTT9
svru8VMUQPQkyWM3aOfW3lkkEq4R3BRvbFSb4pEGEUULG+2qBaRpMK5fjz23fMWu
yxnNlFbOylbDXdwNP+A8gv9WSiI3hJ2lVt50WB4aQW0xTDEKM8LkLEtrLr2UY5/8
dLahdPK4G6nKRoM+r2uyzRPh5o4o1wcEdls9PLQhrGpQOUBRq+fcLuM/FHOIAsh9
2wIDAQAB
-----END PUBLIC KEY-----
"""


def public_key(seed: bytes) -> bytes:
    """The raw Ed25519 public key of an example seed."""
    return bytes(SigningKey(seed).verify_key)


def _sign(document: dict[str, Any], seed: bytes, actor: str) -> dict[str, Any]:
    return create_proof(document, seed=seed, verification_method=f"{actor}#ed25519-key",
                        created=NOW)


def _listing_draft() -> Any:
    data = {
        "kind": "offer", "category": "ride", "title": "Covoiturage vers Lyon",
        "description": "Trois places, **vélo** pliant accepté.",
        "price": {"mode": "amount", "amount": "4.50"},
        "location": {"name": "Quai du Canal", "lat": 45.764, "lon": 4.8357},
        "details": {"from": "Canal", "to": "Lyon", "departure": "2026-12-05T09:00:00+01:00",
                    "seats": 3},
    }
    return parse_listing_input(data, now=NOW, decimals=2)


def _proposal(updated: datetime | None = None) -> dict[str, Any]:
    image = ImageRef(url=f"{A}/media/1/photo.webp", media_type="image/webp", width=800,
                     height=600, alt="La voiture")
    return _sign(build_proposal(
        _listing_draft(), object_id=f"{A}/listings/1", actor_id=ALICE, published=NOW,
        updated=updated, currency=CurrencyRef(uri=f"{A}/currency", code="G", decimals=2),
        images=[image]), ALICE_SEED, ALICE)


def listing_documents() -> dict[str, dict[str, Any]]:
    """A listing's signed Proposal, its Create activity and its Tombstone."""
    object_id = f"{A}/listings/1"
    proposal = _proposal()
    tombstone = _sign(build_tombstone(object_id, deleted=NOW + timedelta(days=1)),
                      ALICE_SEED, ALICE)
    create = listing_activity("Create", proposal, actor=GROUP_A, version=1,
                              published=format_utc(NOW))
    return {"listing-proposal": proposal, "listing-create": create,
            "listing-tombstone": tombstone}


def note_documents() -> dict[str, dict[str, Any]]:
    """What a Mastodon follower of the community gets for that listing: the Group's Create,
    Update and Delete of a public Note (as ``services.publishing.listing_note`` builds them)."""
    proposal = _proposal()
    settings = NoteSettings(note_id=note_id_for(proposal["id"]), group_id=GROUP_A,
                            currency_code="G", language="fr",
                            tag_url=f"{A}/search?category={{category}}")
    updated = _proposal(updated=NOW + timedelta(hours=2))
    when = format_utc(NOW)
    return {
        "listing-note-create": note_activity("Create", build_note(proposal, settings),
                                             group_id=GROUP_A, version=1, published=when),
        "listing-note-update": note_activity(
            "Update", build_note(updated, settings), group_id=GROUP_A, version=2,
            published=format_utc(NOW + timedelta(hours=2))),
        "listing-note-delete": note_activity(
            "Delete", note_tombstone(settings.note_id), group_id=GROUP_A, version=3,
            published=format_utc(NOW + timedelta(days=1))),
    }


def _deal_terms() -> deals.DealTerms:
    return deals.DealTerms(
        agreement_id=f"{B}/deals/1", offer_id=f"{B}/deals/1/offer",
        listing_object=f"{A}/listings/1", booker=BOB, author=ALICE, category="ride",
        quantity="1", unit="seat", slot=None, amount="4.50", deposit=None,
        currency_uri=f"{A}/currency", currency_code="G", message="Bonjour !", published=NOW)


def deal_documents() -> dict[str, dict[str, Any]]:
    """The deal Offer(Agreement), Accept, Reject, state Update, feedback Note and the Create
    that carries it to the other party's node, and the payment notice."""
    terms = _deal_terms()
    offer = _sign(deals.build_offer(terms), PEER_SEED, BOB)
    answer: dict[str, Any] = {
        "activity_id": f"{A}/deals/1/answer", "actor": ALICE, "offer_id": terms.offer_id,
        "agreement_id": terms.agreement_id, "booker": BOB, "when": NOW}
    accept = _sign(deals.build_answer(**answer, accept=True), ALICE_SEED, ALICE)
    reject = _sign(deals.build_answer(**answer, accept=False, reason="Plus de place"),
                   ALICE_SEED, ALICE)
    update = _sign(deals.build_state_update(
        activity_id=f"{A}/deals/1/complete", actor=ALICE, to=BOB,
        agreement_id=terms.agreement_id, state="completed", when=NOW), ALICE_SEED, ALICE)
    feedback = _sign(deals.build_feedback(
        deals.Feedback(rating=5, comment="Trajet parfait", no_show=False),
        note_id=f"{B}/deals/1/feedback", author=BOB, subject=ALICE,
        agreement_id=terms.agreement_id, when=NOW), PEER_SEED, BOB)
    feedback_create = _sign(deals.build_feedback_create(feedback, actor=BOB, subject=ALICE,
                                                        when=NOW), PEER_SEED, BOB)
    payment = _sign(build_notice(
        activity_id=f"{B}/deals/1/payment/price/paid", actor=BOB, to=ALICE,
        agreement_id=terms.agreement_id, action="price", state="paid", transfer_id="t1",
        reason="", when=format_utc(NOW)), PEER_SEED, BOB)
    return {"deal-offer": offer, "deal-accept": accept, "deal-reject": reject,
            "deal-update": update, "deal-feedback": feedback,
            "deal-feedback-create": feedback_create, "deal-payment-notice": payment}


def queue_documents() -> dict[str, dict[str, Any]]:
    """A waiting list across communities: bob's Join and Leave, alice's Accept (his place),
    Reject (with the reason) and the Update giving him the turn."""
    join_id, listing = f"{B}/queue/joins/1", f"{A}/listings/1"
    join = _sign(queue_wire.build_join(activity_id=join_id, actor=BOB, author=ALICE,
                                       listing_object=listing, when=NOW), PEER_SEED, BOB)
    leave = _sign(queue_wire.build_join(activity_id=f"{join_id}/leave", actor=BOB,
                                        author=ALICE, listing_object=listing, when=NOW,
                                        leave=True), PEER_SEED, BOB)
    place = queue_wire.QueuePlace(place_id=f"{A}/queue/places/7", join_id=join_id, member=BOB,
                                  listing_object=listing, state="waiting", position=2)
    turn = replace(place, state="notified", position=1, confirm_by=NOW + timedelta(hours=24))
    refused = replace(place, place_id=f"{A}/queue/refusals/1", state="refused", position=None,
                      reason="this item is not lent out now: book it directly")
    documents = {}
    for name, told, answer in (("accept", place, True), ("reject", refused, True),
                               ("update", turn, False)):
        documents[f"queue-{name}"] = _sign(queue_wire.build_place_message(
            activity_id=f"{told.place_id}/{told.state}", actor=ALICE, place=told, when=NOW,
            answer=answer), ALICE_SEED, ALICE)
    return {"queue-join": join, "queue-leave": leave, **documents}


def ledger_documents() -> dict[str, dict[str, Any]]:
    """A signed payment (EconomicEvent), a payment request (Offer) and its approval."""
    currency = CurrencyTerms(uri=f"{A}/currency", symbol="G", decimals=2)
    terms = TransferTerms(object_id=f"{A}/ledger/transactions/1", kind="payment",
                          payer_uri=ALICE, payee_uri=f"{A}/users/carol", amount=450,
                          memo="Covoiturage", created=NOW, listing_uri=f"{A}/listings/1")
    event = _sign(build_event(terms, currency), ALICE_SEED, ALICE)
    request_terms = TransferTerms(object_id=f"{A}/ledger/transactions/2", kind="request",
                                  payer_uri=ALICE, payee_uri=f"{A}/users/carol", amount=300,
                                  memo="Confiture", created=NOW)
    request = _sign(build_request(request_terms, currency, request_uri=f"{A}/ledger/requests/2",
                                  expires=NOW + timedelta(days=7)), NODE_SEED, f"{A}/users/carol")
    decision = _sign(build_decision(request, decision_uri=f"{A}/ledger/requests/2/accept",
                                    actor_uri=ALICE, approve=True, when=NOW), ALICE_SEED, ALICE)
    return {"ledger-payment": event, "ledger-request": request, "ledger-approval": decision}


def _line_terms() -> p.LineTerms:
    return p.LineTerms(
        line_id="line-1", object_id=f"{A}/iou/lines/line-1", proposer=GROUP_A, acceptor=GROUP_B,
        proposer_currency=p.Currency(uri=f"{A}/currency", symbol="G", decimals=2),
        acceptor_currency=p.Currency(uri=f"{B}/currency", symbol="P", decimals=2),
        limit_proposer_owes=50000, limit_acceptor_owes=50000, rate=Decimal("1.5"),
        created=format_utc(NOW))


def trust_line_documents() -> dict[str, dict[str, Any]]:
    """The co-signed TrustLine agreement, its offer envelope and a LineStatement."""
    agreement = p.cosign(p.build_agreement(_line_terms()), seed=NODE_SEED,
                         verification_method=f"{GROUP_A}#ed25519-key", created=NOW)
    both = p.cosign(agreement, seed=PEER_SEED, verification_method=f"{GROUP_B}#ed25519-key",
                    created=NOW)
    when = format_utc(NOW)
    offer = _sign(p.build_line_answer("TrustLineOffer", actor=GROUP_A, to=GROUP_B,
                                      line_id="line-1", when=when, agreement=agreement),
                  NODE_SEED, GROUP_A)
    accept = _sign(p.build_line_answer("TrustLineAccept", actor=GROUP_B, to=GROUP_A,
                                       line_id="line-1", when=when, agreement=both),
                   PEER_SEED, GROUP_B)
    reject = _sign(p.build_line_answer("TrustLineReject", actor=GROUP_B, to=GROUP_A,
                                       line_id="line-1", when=when), PEER_SEED, GROUP_B)
    update = _sign(p.build_line_update(actor=GROUP_A, to=GROUP_B, line_id="line-1",
                                       change="limits", when=when, nonce="1",
                                       limit_out="400.00", limit_in="500.00"),
                   NODE_SEED, GROUP_A)
    statement = _sign(p.build_statement(
        p.Statement("line-1", 450, -675, ("t1",), (("t1", 450, -675),)), actor=GROUP_A,
        to=GROUP_B, when=when, nonce="1"), NODE_SEED, GROUP_A)
    return {"trust-line-agreement": both, "trust-line-offer": offer,
            "trust-line-accept": accept, "trust-line-reject": reject,
            "trust-line-update": update, "line-statement": statement}


def message_documents() -> dict[str, dict[str, Any]]:
    """A direct message: the signed Note and the Create that carries it."""
    note = _sign(build_direct_note(
        note_id=f"{A}/messages/1", author=ALICE, recipient=BOB, text="Bonjour Bob !",
        published=format_utc(NOW), recipient_handle="bob@b.example"), ALICE_SEED, ALICE)
    return {"message-note": note, "message-create": create_activity(note)}


def iou_documents() -> dict[str, dict[str, Any]]:
    """The cross-node payment messages: IouPrepare, IouCommit, IouReject, IouRelease."""
    terms = p.PrepareTerms(transfer_id="t1", line_id="line-1", amount=675, source_amount=450,
                           route=(GROUP_A, GROUP_B), payer=ALICE, payee=BOB, memo="Merci",
                           expires=format_utc(NOW + timedelta(minutes=10)))
    when = format_utc(NOW)
    docs = {"iou-prepare": _sign(p.build_prepare(terms, actor=GROUP_A, to=GROUP_B, when=when),
                                 NODE_SEED, GROUP_A)}
    for kind in ("IouCommit", "IouReject", "IouRelease"):
        reason = "no capacity" if kind == "IouReject" else ""
        doc = p.build_answer(kind, actor=GROUP_B, to=GROUP_A, transfer_id="t1",
                             line_id="line-1", when=when, reason=reason)
        docs[f"iou-{kind.removeprefix('Iou').lower()}"] = _sign(doc, PEER_SEED, GROUP_B)
    return docs


def actor_documents() -> dict[str, dict[str, Any]]:
    """The community Group, a member Person, a Follow, and an outbox collection and page."""
    def keys(actor: str, seed: bytes) -> ActorKeys:
        return ActorKeys(rsa_key_id=f"{actor}#main-key", rsa_public_pem=RSA_PUBLIC_PEM,
                         ed25519_key_id=f"{actor}#ed25519-key",
                         ed25519_multikey=ed25519_public_to_multikey(public_key(seed)))
    group = build_actor(actor_id=GROUP_A, actor_type="Group", username="quartier",
                        name="Quartier du Canal", summary="Entraide du quartier",
                        shared_inbox=f"{A}/inbox", keys=keys(GROUP_A, NODE_SEED))
    person = build_actor(actor_id=ALICE, actor_type="Person", username="alice", name="Alice",
                         summary="", shared_inbox=f"{A}/inbox", keys=keys(ALICE, ALICE_SEED))
    outbox = ordered_collection(f"{GROUP_A}/outbox", 1, f"{GROUP_A}/outbox?page=1")
    create = listing_documents()["listing-create"]
    page = collection_page(f"{GROUP_A}/outbox?page=1", f"{GROUP_A}/outbox", [create], None)
    follow = follow_activity(f"{GROUP_B}/follows/1", GROUP_B, GROUP_A)
    return {"actor-group": group, "actor-person": person, "collection-outbox": outbox,
            "collection-page": page, "follow": follow}


def build_examples() -> dict[str, dict[str, Any]]:
    """Every example document, by file stem."""
    return {**listing_documents(), **note_documents(), **deal_documents(), **queue_documents(),
            **ledger_documents(),
            **trust_line_documents(), **iou_documents(), **message_documents(),
            **actor_documents()}


def render(document: dict[str, Any]) -> str:
    """The file text of one example (stable key order is the builder's own)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write every example; print the files written."""
    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for name, document in build_examples().items():
        path = EXAMPLES_DIR / f"{name}.json"
        path.write_text(render(document), encoding="utf-8")
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
