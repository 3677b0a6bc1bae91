"""Checking deal receipts against their signers' own keys: in the inbox (the counter-signing
exchange between the two nodes of a deal) and on import (a member who moved here).

Every key comes from its controller's actor document, fetched from the controller's own id
through the actor directory (the guarded client: no private, link-local or metadata address
unless the admin allows the LAN), never from the document being checked or from whoever
presents it; a proof that fails with a cached key is re-checked once with a fresh copy (key
rotation). Our own actors' keys are read locally.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import NotFoundError
from meshnode.federation.directory import FetchBudget
from meshnode.federation.state import Federation
from meshnode.protocol import receipts as proto
from meshnode.protocol.activities import origin_of, strip_fragment
from meshnode.protocol.errors import ProofError, SignatureError, ValidationError
from meshnode.protocol.translatable import Text
from meshnode.services import members, reputation
from meshnode.services import receipts as receipt_service
from meshnode.services.signing import community_actor
from meshnode.store.members import MemberRow

Effect = Callable[[aiosqlite.Connection], Awaitable[str]]


async def _local_key(federation: Federation, method: str) -> bytes:
    ctx = federation.ctx
    controller = strip_fragment(method)
    if method != urls.ed25519_key_id(controller):
        raise ProofError(f"{method[:200]} is not a key this node publishes")
    if controller == community_actor(ctx):
        return ctx.identity.ed25519_public
    prefix = urls.member_actor(ctx.config.base_url, "")
    username = controller[len(prefix):] if controller.startswith(prefix) else ""
    try:
        member = await members.get_member(ctx, username)
    except NotFoundError as exc:
        raise ProofError(f"{controller[:200]} is not a member here") from exc
    return member.ed25519_public


async def _keys(federation: Federation, methods: list[str], *, refresh: bool,
                budget: FetchBudget | None) -> dict[str, bytes]:
    ours = origin_of(federation.ctx.config.base_url)
    keys: dict[str, bytes] = {}
    for method in methods:
        if origin_of(method) == ours:
            keys[method] = await _local_key(federation, method)
            continue
        key = await federation.directory.key(method, refresh=refresh, budget=budget)
        if key.actor_id != strip_fragment(method):
            raise ProofError("the verification method is not its controller's")
        keys[method] = key.ed25519_raw
    return keys


async def verify_with_directory(federation: Federation, document: Mapping[str, Any],
                                signers: frozenset[str], *,
                                budget: FetchBudget | None = None) -> dict[str, bytes]:
    """Check that each of ``signers`` proved ``document`` with a key its own actor document
    lists; returns the keys (method → raw). ProofError/SignatureError otherwise."""
    methods = proto.signer_methods(document, signers)
    keys = await _keys(federation, methods, refresh=False, budget=budget)
    try:
        proto.verify_signed(document, signers, keys)
    except ProofError:
        keys = await _keys(federation, methods, refresh=True, budget=budget)
        proto.verify_signed(document, signers, keys)
    return keys


async def prepare_receipt(federation: Federation, activity: Mapping[str, Any]) -> Effect:
    """An ``Update`` carrying a receipt (its activity proof already checked): verify the
    receipt's proofs, then return the effect that countersigns or completes it."""
    ctx = federation.ctx
    document = activity["object"][receipt_service.RECEIPT_FIELD]
    if not isinstance(document, Mapping):
        raise ValidationError("the receipt must be an object")
    receipt = proto.parse_receipt(document)
    actor = str(activity["actor"])
    we_booked = receipt.booker.node == community_actor(ctx)
    signers = (frozenset({receipt.author.actor, receipt.author.node}) if we_booked
               else receipt.signers)
    if actor not in signers:
        raise ProofError("the receipt was sent by someone who did not sign it")
    keys = await verify_with_directory(federation, document, signers)
    step = receipt_service.countersign if we_booked else receipt_service.complete

    async def effect(tx: aiosqlite.Connection) -> str:
        return await step(ctx, tx, actor, document, keys)
    return effect


# An export may name at most this many communities (origins), so an import makes the node
# fetch actor documents from a bounded set of places (each also within the fetch budget).
MAX_IMPORT_COMMUNITIES = 20
Parsed = tuple[int, proto.Receipt, Mapping[str, Any]]


def _read_receipts(bundle: proto.Bundle) -> tuple[list[Parsed], dict[str, str]]:
    """Every receipt's fields read (no fetch yet): those naming the exporting member once,
    and why each other one is refused (``receipts.N``)."""
    parsed: list[Parsed] = []
    refused: dict[str, str] = {}
    seen: set[str] = set()
    for n, document in enumerate(bundle.receipts):
        try:
            receipt = proto.parse_receipt(document)
        except ValidationError as exc:
            refused[f"receipts.{n}"] = str(exc)[:300]
            continue
        if receipt.side(bundle.actor) is None:
            refused[f"receipts.{n}"] = "this receipt names someone else"
        elif receipt.deal in seen:
            refused[f"receipts.{n}"] = "the same deal twice in this export"
        else:
            seen.add(receipt.deal)
            parsed.append((n, receipt, document))
    return parsed, refused


def _check_communities(bundle: proto.Bundle, parsed: list[Parsed]) -> None:
    origins = {origin_of(actor) for _, receipt, _ in parsed for actor in receipt.signers}
    if len(origins | {origin_of(bundle.actor)}) > MAX_IMPORT_COMMUNITIES:
        raise ValidationError(
            Text("an export may name at most %(max)s communities", max=MAX_IMPORT_COMMUNITIES),
            {"receipts": Text("at most %(max)s communities", max=MAX_IMPORT_COMMUNITIES)})


async def _check_bundle(federation: Federation, member: MemberRow, data: object
                        ) -> tuple[proto.Bundle, list[Parsed], dict[str, str]]:
    ctx = federation.ctx
    bundle = proto.parse_bundle(data, max_receipts=reputation.MAX_BUNDLE_RECEIPTS)
    if bundle.moving_to != urls.member_actor(ctx.config.base_url, member.username):
        raise ValidationError("this export was made for another account",
                              {"movingTo": "must be your account on this node"})
    if not isinstance(data, Mapping):  # parse_bundle checked it; this narrows the type
        raise ValidationError("not a receipt bundle")
    parsed, refused = _read_receipts(bundle)
    _check_communities(bundle, parsed)
    try:
        await verify_with_directory(federation, data, bundle.signers,
                                    budget=federation.stranger_budget)
    except SignatureError as exc:
        raise ValidationError("the export's signatures do not verify",
                              {"proof": str(exc)[:200]}) from exc
    return bundle, parsed, refused


async def import_bundle(federation: Federation, member: MemberRow, data: object) -> int:
    """Verify a moving member's export (their and their node's proofs, then every receipt's
    proofs, keys fetched within the budget for origins that are not peers: 429 when spent,
    and a retry goes on with the keys fetched so far) and keep the receipts, all or none.
    ValidationError naming each refused receipt (``receipts.N``), ConflictError for receipts
    already here."""
    bundle, parsed, refused = await _check_bundle(federation, member, data)
    checked: list[reputation.VerifiedReceipt] = []
    for n, receipt, document in parsed:
        try:
            keys = await verify_with_directory(federation, document, receipt.signers,
                                               budget=federation.stranger_budget)
        except (SignatureError, ValidationError) as exc:
            refused[f"receipts.{n}"] = f"a signature does not verify: {str(exc)[:200]}"
            continue
        checked.append(reputation.VerifiedReceipt(receipt, document, keys))
    if refused:
        raise ValidationError(Text("%(count)s receipt(s) refused; nothing was imported",
                                   count=len(refused)), dict(sorted(refused.items())))
    return await reputation.store_imported(federation.ctx, member, bundle.actor, checked)
