"""A document verified with a key is not checked again; other bytes always are (issue 17)."""

from __future__ import annotations

import pytest

from meshnode.services import listings as listing_service
from meshnode.services import trust
from meshnode.services.context import NodeContext
from meshnode.services.verified import VerifiedDocuments, verification_token
from tests import conftest as base
from tests.conftest import ride_listing


def test_verified_documents__keep_the_most_recently_used_within_the_bound() -> None:
    # Given a set of two, holding a and b, with a used last
    kept = VerifiedDocuments(max_entries=2)
    a, b, c = (verification_token(text, "key#1", bytes(32)) for text in ("a", "b", "c"))
    kept.add(a)
    kept.add(b)
    assert a in kept
    # When c is added
    kept.add(c)
    # Then b, the least recently used, is gone and the set holds two
    assert (a in kept, b in kept, c in kept, len(kept)) == (True, False, True, 2)


def test_verification_token__names_the_text_the_key_and_its_id() -> None:
    token = verification_token("doc", "key#1", bytes(32))
    assert token != verification_token("doc ", "key#1", bytes(32))
    assert token != verification_token("doc", "key#2", bytes(32))
    assert token != verification_token("doc", "key#1", bytes(31) + b"\1")


async def test_signature_verdict__checks_a_document_once_and_tampered_bytes_every_time(
    ctx: NodeContext, alice: base.TestMember, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a local listing, and a count of the Ed25519 checks made
    view = await listing_service.create_listing(ctx, alice.row, ride_listing())
    checks: list[str] = []
    verify = trust.verify_with_key

    def counted(text: str, **kwargs: object) -> object:
        checks.append(text)
        return verify(text, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trust, "verify_with_key", counted)
    # When its verdict is asked three times, with a commit in between
    first = await trust.signature_verdict(ctx, view.row)
    await trust.signature_verdict(ctx, view.row)
    async with ctx.store.transaction() as tx:
        await tx.execute("INSERT INTO community_settings (key, value) VALUES ('x', '1')")
    third = await trust.signature_verdict(ctx, view.row)
    # Then the document was checked once, and shown verified each time
    assert (first.status.value, third.status.value) == ("verified", "verified")
    assert len(checks) == 1
    # And an altered copy of the row is checked each time it is asked, never verified
    altered = view.row.__class__(**{**view.row.__dict__, "signed_object":
                                    view.row.signed_object.replace("Lyon", "Paris")})
    for _ in range(2):
        assert (await trust.signature_verdict(ctx, altered)).status.value != "verified"
    assert len(checks) == 3
