"""Every document type meshnode emits, built by the real code and parsed by Fedify 2.3.6's own
vocabulary (``@fedify/vocab``, run by Node: tests/interop/fedify/parse.mjs), issue 15.

Fedify is the most complete FEP-0837 / FEP-8b32 implementation in the fediverse; if it reads a
different name, price, quantity or proof than we sent, other servers will too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from meshnode.keys import Identity, generate_identity
from meshnode.protocol import deals
from meshnode.protocol.activities import ActorKeys, build_actor, listing_activity
from meshnode.protocol.iou.lines import Currency, LineTerms, build_agreement
from meshnode.protocol.iou.messages import PrepareTerms, build_answer, build_prepare
from meshnode.protocol.iou.reconcile import Statement, build_statement
from meshnode.protocol.listings import (
    CurrencyRef,
    build_proposal,
    build_tombstone,
    parse_listing_input,
)
from meshnode.protocol.multikey import b58decode
from meshnode.protocol.notes import (
    NoteSettings,
    build_note,
    note_activity,
    note_id_for,
    note_tombstone,
)
from meshnode.protocol.proofs import create_proof
from tests.conftest import ride_listing
from tests.interop.fedify_runner import run_script

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8080"
ALICE = f"{BASE}/users/alice"
BOB = "http://127.0.0.1:8081/users/bob"
LISTING = f"{BASE}/listings/7"
CURRENCY = CurrencyRef(uri=f"{BASE}/currency", code="G", decimals=2)



def _sign(document: dict[str, Any], identity: Identity, actor: str) -> dict[str, Any]:
    return create_proof(document, seed=identity.ed25519_seed,
                        verification_method=f"{actor}#ed25519", created=NOW)


@pytest.fixture(scope="module")
def alice() -> Identity:
    return generate_identity()


@pytest.fixture(scope="module")
def documents(alice: Identity) -> dict[str, dict[str, Any]]:
    """One document of each kind, as the node builds and signs it."""
    draft = parse_listing_input(ride_listing(), now=NOW, decimals=2)
    proposal = _sign(build_proposal(draft, object_id=LISTING, actor_id=ALICE, published=NOW,
                                    updated=None, currency=CURRENCY), alice, ALICE)
    terms = deals.DealTerms(
        agreement_id=f"{BOB}/deals/1", offer_id=f"{BOB}/deals/1/offer", listing_object=LISTING,
        booker=BOB, author=ALICE, category="ride", quantity="2", unit="seat", slot=None,
        amount="9.00", deposit=None, currency_uri=CURRENCY.uri, currency_code="G",
        message="Deux places, merci !", published=NOW)
    prepare = PrepareTerms(transfer_id="t-1", line_id="l-1", amount=450, source_amount=450,
                           route=(BASE, "http://127.0.0.1:8081"), payer=ALICE, payee=BOB,
                           memo="covoiturage", expires="2026-11-26T10:05:00Z")
    keys = ActorKeys(f"{ALICE}#main-key", alice.rsa_public_pem, f"{ALICE}#ed25519", alice.multikey)
    group = f"{BASE}/groups/voisins"
    group_keys = ActorKeys(f"{group}#main-key", alice.rsa_public_pem, f"{group}#ed25519",
                           alice.multikey)
    line = LineTerms(
        line_id="l-1", object_id=f"{BASE}/iou/lines/l-1", proposer=group,
        acceptor="http://127.0.0.1:8081/groups/jardins",
        proposer_currency=Currency(CURRENCY.uri, "G", 2),
        acceptor_currency=Currency("http://127.0.0.1:8081/currency", "J", 2),
        limit_proposer_owes=10000, limit_acceptor_owes=10000, rate=Decimal("1.5"),
        created="2026-11-26T10:00:00Z")
    note_settings = NoteSettings(note_id=note_id_for(LISTING), group_id=group,
                                 currency_code="G", language="fr",
                                 tag_url=f"{BASE}/listings?category={{category}}")
    feedback = _sign(deals.build_feedback(
        deals.Feedback(5, "Très ponctuelle, merci !", no_show=False),
        note_id=f"{ALICE}/feedback/1", author=ALICE, subject=BOB,
        agreement_id=terms.agreement_id, when=NOW), alice, ALICE)
    note = build_note(proposal, note_settings)
    return {
        "group": build_actor(actor_id=group, actor_type="Group", username="voisins",
                             name="Les Voisins du Canal", summary="", shared_inbox=f"{BASE}/inbox",
                             keys=group_keys),
        "note": note,
        "note_create": note_activity("Create", note, group_id=group, version=1,
                                     published="2026-11-26T10:00:00Z"),
        "note_delete": note_activity("Delete", note_tombstone(note["id"]), group_id=group,
                                     version=2, published="2026-11-26T11:00:00Z"),
        "feedback": feedback,
        "feedback_create": _sign(deals.build_feedback_create(feedback, actor=ALICE,
                                                             subject=BOB, when=NOW),
                                 alice, ALICE),
        "deal_update": deals.build_state_update(
            activity_id=f"{ALICE}/deals/1/complete", actor=ALICE, to=BOB,
            agreement_id=terms.agreement_id, state="completed", when=NOW),
        "trust_line": build_agreement(line),
        "line_statement": build_statement(
            Statement(line_id="l-1", balance=-450, peer_balance=675, transfers=("t-1",)),
            actor=group, to=line.acceptor, when="2026-11-26T10:00:00Z", nonce="n1"),
        "proposal": proposal,
        "create": listing_activity("Create", proposal, actor=ALICE, version=1,
                                   published="2026-11-26T10:00:00Z"),
        "tombstone": _sign(build_tombstone(LISTING, deleted=NOW + timedelta(hours=1)),
                           alice, ALICE),
        "offer": deals.build_offer(terms),
        "accept": deals.build_answer(activity_id=f"{ALICE}/deals/1/accept", actor=ALICE,
                                     offer_id=terms.offer_id, agreement_id=terms.agreement_id,
                                     booker=BOB, accept=True, when=NOW),
        "iou_prepare": build_prepare(prepare, actor=f"{BASE}/actor", to=BOB,
                                     when="2026-11-26T10:00:00Z"),
        "iou_commit": build_answer("IouCommit", actor=f"{BASE}/actor", to=BOB, transfer_id="t-1",
                                   line_id="l-1", when="2026-11-26T10:00:01Z"),
        "person": build_actor(actor_id=ALICE, actor_type="Person", username="alice",
                              name="Alice", summary="", shared_inbox=f"{BASE}/inbox", keys=keys),
    }


@pytest.fixture(scope="module")
def parsed(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What Fedify read from each document (one Node process for all of them)."""
    payload = [{"label": label, "document": doc} for label, doc in documents.items()]
    results: dict[str, Any] = run_script("parse.mjs", payload)
    return results


def _fields(parsed: dict[str, Any], label: str) -> dict[str, Any]:
    result = parsed[label]
    assert result["ok"], f"Fedify could not parse our {label}: {result['error']}"
    fields: dict[str, Any] = result["fields"]
    return fields


def _proof_as_sent(document: dict[str, Any]) -> dict[str, Any]:
    proof = document["proof"]
    return {"cryptosuite": proof["cryptosuite"], "verificationMethod": proof["verificationMethod"],
            "proofPurpose": proof["proofPurpose"], "created": proof["created"],
            "proofValueHex": b58decode(proof["proofValue"][1:]).hex()}


@pytest.mark.parametrize("label", ["proposal", "create"])
def test_fedify_parse__listing_proposal_reads_as_sent(
    label: str, parsed: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    # Given a signed ride listing (price 4.50 G, 3 seats, a place), alone or in its Create
    sent = documents["proposal"]
    # When Fedify parses it
    fields = _fields(parsed, label)
    if label == "create":
        assert fields["class"] == "Create"
        assert fields["activityActor"] == ALICE
        assert fields["activityObject"] == LISTING
        return
    # Then every field we sent is what it read
    assert fields["class"] == "Proposal"
    assert (fields["id"], fields["name"], fields["content"]) == (
        LISTING, sent["name"], sent["content"])
    assert fields["purpose"] == "offer"
    assert fields["unitBased"] is True
    assert fields["publishes"] == {
        "id": f"{LISTING}#primary", "action": "deliverService",
        "resourceConformsTo": sent["publishes"]["resourceConformsTo"],
        "resourceQuantity": {"unit": "seat", "value": "3"},
        "availableQuantity": None, "minimumQuantity": None}
    assert fields["reciprocal"] == {
        "id": f"{LISTING}#reciprocal", "action": "transfer",
        "resourceConformsTo": CURRENCY.uri,
        "resourceQuantity": {"unit": "G", "value": "4.50"},
        "availableQuantity": None, "minimumQuantity": None}
    assert fields["location"] == {"type": "Place", "name": "Quai du Canal",
                                  "latitude": 45.764, "longitude": 4.8357}
    assert fields["proofs"] == [_proof_as_sent(sent)]


def test_fedify_parse__tombstone_keeps_its_id_deletion_time_and_proof(
    parsed: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    fields = _fields(parsed, "tombstone")
    assert fields["class"] == "Tombstone"
    assert fields["id"] == LISTING
    assert fields["deleted"] == "2026-11-26T11:00:00Z"
    assert fields["proofs"] == [_proof_as_sent(documents["tombstone"])]


def test_fedify_parse__deal_offer_and_accept_read_as_activities(
    parsed: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    offer = _fields(parsed, "offer")
    assert (offer["class"], offer["id"], offer["activityActor"]) == (
        "Offer", f"{BOB}/deals/1/offer", BOB)
    assert offer["activityObject"] == f"{BOB}/deals/1"
    assert offer["content"] == "Deux places, merci !"
    accept = _fields(parsed, "accept")
    assert (accept["class"], accept["activityActor"], accept["activityObject"]) == (
        "Accept", ALICE, f"{BOB}/deals/1/offer")


@pytest.mark.parametrize("label", ["iou_prepare", "iou_commit", "trust_line", "line_statement"])
def test_fedify_parse__iou_messages_are_refused_as_unknown_types(
    label: str, parsed: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    # IOU and trust-line messages travel only between meshnode nodes; their types
    # (mn:IouPrepare, mn:TrustLine, ...) are ours, and Fedify's Object.fromJsonLd refuses any
    # type outside its vocabulary. This pins that fact: if we ever give them an ActivityStreams
    # base type, this test must change.
    result = parsed[label]
    assert not result["ok"]
    assert result["error"] == f"TypeError: Invalid type: urn:meshnode:ns#{documents[label]['type']}"


def test_fedify_parse__person_actor_keys_are_where_fedify_looks(parsed: dict[str, Any]) -> None:
    # Fedify finds HTTP-signature keys only in publicKey and proof keys in assertionMethod
    fields = _fields(parsed, "person")
    assert fields["class"] == "Person"
    assert fields["actor"] == {
        "preferredUsername": "alice", "inbox": f"{ALICE}/inbox", "sharedInbox": f"{BASE}/inbox",
        "publicKey": {"id": f"{ALICE}#main-key", "owner": ALICE},
        "assertionMethods": [{"id": f"{ALICE}#ed25519", "controller": ALICE,
                              "type": "Multikey"}]}


def test_fedify_parse__group_actor_reads_as_a_group_with_its_keys(parsed: dict[str, Any]) -> None:
    group = f"{BASE}/groups/voisins"
    fields = _fields(parsed, "group")
    assert (fields["class"], fields["id"], fields["name"]) == (
        "Group", group, "Les Voisins du Canal")
    assert fields["actor"]["publicKey"] == {"id": f"{group}#main-key", "owner": group}
    assert fields["actor"]["assertionMethods"] == [
        {"id": f"{group}#ed25519", "controller": group, "type": "Multikey"}]


def test_fedify_parse__note_for_mastodon_followers_keeps_its_text(
    parsed: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    sent = documents["note"]
    fields = _fields(parsed, "note")
    assert (fields["class"], fields["id"], fields["content"]) == (
        "Note", sent["id"], sent["content"])


def test_fedify_parse__deal_feedback_and_state_update_keep_text_target_and_proof(
    parsed: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    feedback = _fields(parsed, "feedback")
    assert (feedback["class"], feedback["content"]) == ("Note", "Très ponctuelle, merci !")
    assert feedback["proofs"] == [_proof_as_sent(documents["feedback"])]
    update = _fields(parsed, "deal_update")
    assert (update["class"], update["activityActor"], update["activityObject"]) == (
        "Update", ALICE, f"{BOB}/deals/1")


def test_fedify_parse__note_create_and_delete_read_as_the_groups_activities(
    parsed: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    # The Group's Create and Delete of a listing's Note, as a Mastodon follower receives them
    note_id = documents["note"]["id"]
    group = documents["group"]["id"]
    for label, kind in (("note_create", "Create"), ("note_delete", "Delete")):
        fields = _fields(parsed, label)
        assert (fields["class"], fields["activityActor"], fields["activityObject"]) == (
            kind, group, note_id)


def test_fedify_parse__feedback_create_carries_the_signed_feedback_and_its_own_proof(
    parsed: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    fields = _fields(parsed, "feedback_create")
    assert (fields["class"], fields["activityActor"], fields["activityObject"]) == (
        "Create", ALICE, documents["feedback"]["id"])
    assert fields["proofs"] == [_proof_as_sent(documents["feedback_create"])]
