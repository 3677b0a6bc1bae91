"""The inbox reads JSON-LD written with other contexts, and refuses hostile ones (issue 15).

Real nodes on 127.0.0.1: alpha (alice's node, beta's peer) sends, beta receives. A "decoy"
HTTP server counts requests: it hosts the unknown context URLs, so a test can prove beta
never fetched one. Proofs are made with alice's real key over the document as sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from meshnode.protocol.direct_messages import build_direct_note
from meshnode.protocol.proofs import create_proof, verify_proof
from meshnode.protocol.vocab import AS_CONTEXT, LISTING_CONTEXT, VALUEFLOWS
from meshnode.services import members
from tests.federation.conftest import Node, bind_socket, settle
from tests.federation.test_inbox_hostile import _actor, follows, sign


@dataclass
class Decoy:
    """A local HTTP server that answers every request 404 and counts them."""

    url: str
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def decoy() -> AsyncIterator[Decoy]:
    sock = bind_socket()
    found = Decoy(url=f"http://127.0.0.1:{sock.getsockname()[1]}")

    async def handler(request: web.Request) -> web.Response:
        found.hits.append(request.path)
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    yield found
    await runner.cleanup()


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=headers) as response:
        return response.status, json.loads(await response.text() or "{}")


async def _signed_listing_create(alpha: Node, alice: Any, rewrite: Any) -> dict[str, Any]:
    """alice's listing, rewritten by ``rewrite`` and then signed with her key: a Create."""
    view = await alpha.publish(alice)
    document = json.loads(view.row.signed_object)
    document.pop("proof")
    document = rewrite(document)
    document["id"] = document["url"] = f"{document['id']}-rewritten"
    actor = _actor(alpha, alice)
    signed = create_proof(document, seed=members.member_identity(alpha.ctx, alice).ed25519_seed,
                          verification_method=f"{actor}#ed25519-key",
                          created=datetime(2026, 11, 26, 10, tzinfo=UTC))
    return {"@context": AS_CONTEXT, "id": f"{document['id']}/activities/create-1",
            "type": "Create", "actor": actor, "object": signed, "to": [signed["to"][0]]}


def _prefixed(document: dict[str, Any]) -> dict[str, Any]:
    """Written as other FEP-0837 software may: vf: CURIEs and full IRIs, not our terms."""
    out = dict(document)
    out["type"] = "vf:Proposal"
    out["vf:purpose"] = out.pop("purpose")
    intent = dict(out.pop("publishes"))
    intent["type"] = f"{VALUEFLOWS}Intent"
    intent[f"{VALUEFLOWS}resourceConformsTo"] = {"id": intent.pop("resourceConformsTo")}
    out[f"{VALUEFLOWS}publishes"] = intent
    return out


async def _send(alpha: Node, beta: Node, alice: Any,
                create: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = json.dumps(create).encode()
    url = f"{beta.url}/inbox"
    return await _post(url, body, sign(alpha, alice, url, body))


async def _nothing_stored(beta: Node) -> None:
    await beta.workers.inbox.step()
    assert await beta.count("SELECT count(*) FROM inbox_activities") == 0
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 0


@pytest.fixture
async def pair(make_node: Any) -> tuple[Node, Node, Any]:
    # Given alpha is beta's peer: public content from alpha passes beta's door
    alpha, beta = await make_node("alpha"), await make_node("beta")
    alice = await alpha.member("alice")
    await follows(beta, alpha)
    return alpha, beta, alice


async def test_inbox__proposal_with_prefixed_and_full_iri_terms_is_stored_as_a_listing(
        pair: Any) -> None:
    # Given alice's listing written with "vf:Proposal", "vf:purpose" and full-IRI properties,
    # signed in that form
    alpha, beta, alice = pair
    create = await _signed_listing_create(alpha, alice, _prefixed)
    # When alpha posts its Create, Then the door reads it as a listing Create
    status, payload = await _send(alpha, beta, alice, create)
    assert status == 202, payload
    # and the worker verifies the proof on the document as signed, reads it in our names
    await beta.workers.inbox.step()
    row = await beta.remote(create["object"]["id"])
    assert row is not None
    assert (row.title, row.kind, row.category) == (create["object"]["name"], "offer", "ride")
    # and stores the signed text as it was sent (its proof still verifies: pages check it)
    stored = json.loads(row.signed_object)
    assert stored == create["object"]
    assert stored["type"] == "vf:Proposal"
    verify_proof(stored, public_key=members.member_identity(alpha.ctx, alice).ed25519_public)


async def test_inbox__listing_naming_an_unknown_context_url_is_refused_and_never_fetched(
        pair: Any, decoy: Decoy) -> None:
    # Given a signed listing whose @context names a URL we do not vendor
    alpha, beta, alice = pair
    create = await _signed_listing_create(
        alpha, alice, lambda d: {**d, "@context": [*LISTING_CONTEXT, f"{decoy.url}/ctx.jsonld"]})
    # When alpha posts it, Then it is refused with 422 naming the context, never fetched,
    # and nothing is stored
    status, payload = await _send(alpha, beta, alice, create)
    assert (status, payload["error"]) == (422, "bad_context"), payload
    assert "unknown context" in payload["fields"]["@context"]
    assert decoy.hits == []
    await _nothing_stored(beta)


def _huge_context(document: dict[str, Any]) -> dict[str, Any]:
    terms = {f"t{n}": f"e:{n}" for n in range(10_000)}  # 160 KB: under the body cap
    return {**document, "@context": [*LISTING_CONTEXT, terms]}


def _deep_context(document: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {"leaf": "urn:leaf"}
    for depth in range(12):
        context = {f"t{depth}": {"@id": f"urn:t{depth}", "@context": context}}
    return {**document, "@context": [*LISTING_CONTEXT, context]}


@pytest.mark.parametrize(("rewrite", "message"), [
    (_huge_context, "more than 512 terms"), (_deep_context, "too deeply")],
    ids=["10000-terms", "nested-scoped-contexts"])
async def test_inbox__listing_with_a_hostile_context_is_refused_and_nothing_stored(
        pair: Any, rewrite: Any, message: str) -> None:
    # Given a signed listing Create whose object carries a hostile context
    alpha, beta, alice = pair
    create = await _signed_listing_create(alpha, alice, rewrite)
    # When alpha posts it, Then it is refused with 422 before any signature work, and
    # nothing is stored
    status, payload = await _send(alpha, beta, alice, create)
    assert (status, payload["error"]) == (422, "bad_context"), payload
    assert message in payload["message"]
    await _nothing_stored(beta)


async def test_inbox__follow_naming_an_unknown_context_is_accepted_without_fetching_it(
        make_node: Any, decoy: Decoy) -> None:
    # Given a Follow of beta's Group whose @context names a URL we do not know (as Akkoma's
    # name a litepub context on their own host)
    alpha, beta = await make_node("alpha"), await make_node("beta")
    alice = await alpha.member("alice")
    actor = _actor(alpha, alice)
    follow = {"@context": [AS_CONTEXT, f"{decoy.url}/schemas/litepub-0.1.jsonld"],
              "id": f"{actor}/follows/1", "type": "Follow", "actor": actor,
              "object": beta.group}
    # When she sends it, Then unknown terms are ignored: it is accepted and processed, and
    # the context URL was never fetched
    status, payload = await _send(alpha, beta, alice, follow)
    assert status == 202, payload
    await beta.workers.inbox.step()
    assert await beta.count("SELECT count(*) FROM followers WHERE state = 'accepted'") == 1
    assert decoy.hits == []


async def test_inbox__direct_message_with_prefixed_terms_is_verified_as_signed_and_kept(
        make_node: Any) -> None:
    # Given alice@alpha writes to bob@beta (not peers) a Note using "as:content" and a full
    # IRI for attributedTo, signed in that form: its compact reading differs from what was
    # signed, so only a proof check on the received form can pass
    alpha, beta = await make_node("alpha"), await make_node("beta")
    alice, bob = await alpha.member("alice"), await beta.member("bob")
    actor, recipient = _actor(alpha, alice), _actor(beta, bob)
    note = build_direct_note(note_id=f"{actor}/notes/n1", author=actor, recipient=recipient,
                             text="Bonjour Bob", published="2026-11-26T10:00:00Z")
    note["as:content"] = note.pop("content")
    note["https://www.w3.org/ns/activitystreams#attributedTo"] = note.pop("attributedTo")
    signed = create_proof(note, seed=members.member_identity(alpha.ctx, alice).ed25519_seed,
                          verification_method=f"{actor}#ed25519-key",
                          created=datetime(2026, 11, 26, 10, tzinfo=UTC))
    create = {"@context": AS_CONTEXT, "id": f"{note['id']}/create", "type": "Create",
              "actor": actor, "to": [recipient], "object": signed}
    # When it reaches beta's inbox and the worker runs
    status, payload = await _send(alpha, beta, alice, create)
    assert status == 202, payload
    await settle(alpha, beta)
    # Then the proof verified on the Note as signed and bob has the message
    async with beta.ctx.store.reader.execute("SELECT outcome FROM inbox_activities") as cur:
        assert [row[0] for row in await cur.fetchall()] == ["stored"]
    assert await beta.count("SELECT count(*) FROM direct_messages") == 1
