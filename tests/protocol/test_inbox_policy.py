"""The inbox door policy: who may post what, decided from the activity and origin facts.

Given our node at http://us.test (Group /groups/canal, members under /users/), when an
activity arrives from http://them.test, then ``decide`` admits or refuses it with a reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from meshnode.protocol.inbox_policy import Here, Quota, Sender, decide, quota_retry_after

US = "http://us.test"
HERE = Here(origin=US, community=f"{US}/groups/canal", member_prefix=f"{US}/users/")
THEM = "http://them.test"
ACTOR = f"{THEM}/users/zoe"
STRANGER = Sender(is_peer=False)
PEER = Sender(is_peer=True, our_follow_id=f"{US}/groups/canal/activities/follow-1")


def act(kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
    return {"id": f"{THEM}/a/1", "type": kind, "actor": ACTOR, "object": obj, **extra}


def proposal(object_id: str = f"{THEM}/listings/1") -> dict[str, Any]:
    return {"id": object_id, "type": "Proposal", "attributedTo": ACTOR}


# --- public content: peers only ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["Create", "Update", "Announce"])
def test_policy__public_content_from_a_stranger_is_refused(kind: str) -> None:
    verdict = decide(act(kind, proposal()), here=HERE, sender=STRANGER)
    assert (verdict.admit, verdict.reason) == (False, "not_a_peer")


def test_policy__delete_from_a_stranger_is_refused() -> None:
    verdict = decide(act("Delete", f"{THEM}/listings/1"), here=HERE, sender=STRANGER)
    assert (verdict.admit, verdict.reason) == (False, "not_a_peer")


@pytest.mark.parametrize("kind", ["Create", "Update"])
def test_policy__peer_create_or_update_of_its_own_listing_is_admitted(kind: str) -> None:
    assert decide(act(kind, proposal()), here=HERE, sender=PEER).admit


@pytest.mark.parametrize("kind", ["Create", "Update"])
def test_policy__create_of_an_object_on_another_origin_is_refused(kind: str) -> None:
    # relays travel as Announce, never as a Create in someone else's name
    verdict = decide(act(kind, proposal("http://third.test/listings/9")), here=HERE,
                     sender=PEER)
    assert (verdict.admit, verdict.reason) == (False, "foreign_object")


@pytest.mark.parametrize("kind", ["Update", "Delete"])
def test_policy__update_or_delete_of_our_own_object_is_refused_even_from_a_peer(
        kind: str) -> None:
    obj: Any = proposal(f"{US}/listings/1") if kind == "Update" else f"{US}/listings/1"
    verdict = decide(act(kind, obj), here=HERE, sender=PEER)
    assert (verdict.admit, verdict.reason) == (False, "our_object")


def test_policy__peer_announce_of_a_third_partys_listing_is_admitted() -> None:
    relayed = {"id": "http://third.test/listings/9", "type": "Proposal"}
    assert decide(act("Announce", relayed), here=HERE, sender=PEER).admit


def test_policy__announce_of_a_link_or_a_note_is_refused() -> None:
    for obj in ("http://third.test/listings/9", {"id": f"{THEM}/n/1", "type": "Note"}):
        verdict = decide(act("Announce", obj), here=HERE, sender=PEER)
        assert (verdict.admit, verdict.reason) == (False, "unsupported")


def test_policy__create_of_a_plain_note_is_refused_even_from_a_peer() -> None:
    # a Note not addressed to one of our members (direct messages are, see below)
    note = {"id": f"{THEM}/n/1", "type": "Note", "content": "x" * 100}
    verdict = decide(act("Create", note), here=HERE, sender=PEER)
    assert (verdict.admit, verdict.reason) == (False, "not_addressed")


# --- relationships and answers: from anyone ---------------------------------------------


@pytest.mark.parametrize("target", [f"{US}/groups/canal", f"{US}/users/alice"])
def test_policy__follow_of_our_actors_is_admitted_from_a_stranger(target: str) -> None:
    assert decide(act("Follow", target), here=HERE, sender=STRANGER).admit


@pytest.mark.parametrize("target", ["http://third.test/groups/x", f"{US}/users/alice/extra",
                                    f"{US}/listings/1"])
def test_policy__follow_of_something_else_is_refused(target: str) -> None:
    verdict = decide(act("Follow", target), here=HERE, sender=STRANGER)
    assert (verdict.admit, verdict.reason) == (False, "not_addressed")


@pytest.mark.parametrize("kind", ["Accept", "Reject"])
def test_policy__answer_to_our_follow_is_admitted(kind: str) -> None:
    follow = {"type": "Follow", "id": PEER.our_follow_id}
    assert decide(act(kind, follow), here=HERE, sender=PEER).admit


@pytest.mark.parametrize("follow", [f"{US}/groups/canal/activities/follow-other",
                                    f"{THEM}/activities/follow-1"])
def test_policy__accept_of_a_follow_we_never_sent_is_refused(follow: str) -> None:
    verdict = decide(act("Accept", follow), here=HERE, sender=PEER)
    assert (verdict.admit, verdict.reason) == (False, "unknown_follow")
    assert not decide(act("Reject", follow), here=HERE, sender=STRANGER).admit


def test_policy__undo_of_ones_own_follow_is_admitted_from_a_stranger() -> None:
    follow = {"id": f"{THEM}/follows/1", "type": "Follow", "actor": ACTOR}
    assert decide(act("Undo", follow), here=HERE, sender=STRANGER).admit
    assert decide(act("Undo", f"{THEM}/follows/1"), here=HERE, sender=STRANGER).admit


@pytest.mark.parametrize("follow", [
    {"id": f"{THEM}/follows/1", "type": "Follow", "actor": f"{THEM}/users/other"},
    {"id": "http://third.test/follows/1", "type": "Follow"},
    "http://third.test/follows/1",
])
def test_policy__undo_of_an_activity_someone_else_made_is_refused(follow: Any) -> None:
    verdict = decide(act("Undo", follow), here=HERE, sender=PEER)
    assert (verdict.admit, verdict.reason) == (False, "not_yours")


def test_policy__undo_of_a_like_is_unsupported() -> None:
    verdict = decide(act("Undo", {"id": f"{THEM}/l/1", "type": "Like"}), here=HERE, sender=PEER)
    assert (verdict.admit, verdict.reason) == (False, "unsupported")


@pytest.mark.parametrize("kind", ["Like", "Move", "Block", "Add", "EmojiReact"])
def test_policy__unsupported_types_are_refused_even_from_a_peer(kind: str) -> None:
    verdict = decide(act(kind, f"{US}/listings/1"), here=HERE, sender=PEER)
    assert (verdict.admit, verdict.reason) == (False, "unsupported")


# --- deals and IOUs: addressed to our members, community or objects ---------------------


def offer(**changes: Any) -> dict[str, Any]:
    document = act("Offer", {"type": "Agreement", "id": f"{THEM}/agreements/1"},
                   to=[f"{US}/users/alice"], target=f"{US}/listings/1")
    document.update(changes)
    return document


def test_policy__deal_offer_on_our_listing_is_admitted_from_a_stranger() -> None:
    # a node that saw the listing relayed books it: it is not our peer
    assert decide(offer(), here=HERE, sender=STRANGER).admit


@pytest.mark.parametrize(("changes", "reason"), [
    ({"target": "http://third.test/listings/1"}, "not_addressed"),
    ({"to": ["http://third.test/users/bob"]}, "not_addressed"),
    ({"object": {"type": "Agreement", "id": "http://third.test/agreements/1"}},
     "foreign_object"),
])
def test_policy__deal_offer_not_about_us_is_refused(changes: dict[str, Any],
                                                    reason: str) -> None:
    verdict = decide(offer(**changes), here=HERE, sender=STRANGER)
    assert (verdict.admit, verdict.reason) == (False, reason)


def test_policy__deal_answer_must_answer_an_offer_we_sent() -> None:
    ours = act("Accept", {"type": "Offer", "id": f"{US}/offers/1"}, to=[f"{US}/users/a"])
    theirs = act("Accept", {"type": "Offer", "id": f"{THEM}/offers/1"}, to=[f"{US}/users/a"])
    assert decide(ours, here=HERE, sender=STRANGER).admit
    assert decide(theirs, here=HERE, sender=STRANGER).reason == "unknown_offer"


def test_policy__deal_update_of_an_agreement_on_our_host_is_admitted() -> None:
    # the Agreement lives on the booker's node (ours): this is a state change, not an edit
    update = act("Update", {"type": "Agreement", "id": f"{US}/agreements/1",
                            "dealState": "completed"}, to=[f"{US}/users/alice"])
    assert decide(update, here=HERE, sender=STRANGER).admit


def test_policy__feedback_to_our_member_is_admitted_from_a_stranger() -> None:
    note = {"type": "Note", "id": f"{THEM}/notes/1", "feedbackFor": f"{US}/agreements/1"}
    create = act("Create", note, to=[f"{US}/users/alice"])
    assert decide(create, here=HERE, sender=STRANGER).admit
    create["to"] = ["http://third.test/users/x"]
    assert decide(create, here=HERE, sender=STRANGER).reason == "not_addressed"


@pytest.mark.parametrize("kind", ["TrustLineOffer", "IouPrepare", "LineStatement"])
def test_policy__iou_messages_to_our_community_are_admitted(kind: str) -> None:
    message = {"id": f"{THEM}/a/1", "type": kind, "actor": f"{THEM}/groups/g",
               "to": [HERE.community]}
    assert decide(message, here=HERE, sender=STRANGER).admit
    message["to"] = [f"{US}/users/alice"]
    assert decide(message, here=HERE, sender=STRANGER).reason == "not_addressed"


# --- quotas ------------------------------------------------------------------------------


def test_quota__fits_until_rows_or_bytes_run_out() -> None:
    quota = Quota(rows=3, bytes=1000)
    assert quota_retry_after(used_rows=2, used_bytes=500, new_bytes=500, quota=quota,
                             oldest_age=10) is None
    assert quota_retry_after(used_rows=3, used_bytes=0, new_bytes=1, quota=quota,
                             oldest_age=600) == 3001
    assert quota_retry_after(used_rows=0, used_bytes=900, new_bytes=101, quota=quota,
                             oldest_age=3599.5) == 1


# --- direct messages: to one of our members, from anyone ----------------------------------


def direct_note(to: str, note_id: str = f"{THEM}/users/zoe/notes/1") -> dict[str, Any]:
    return {"id": note_id, "type": "Note", "attributedTo": ACTOR, "to": [to], "content": "Hi"}


def test_policy__direct_note_to_our_member_from_a_stranger_is_admitted() -> None:
    note = direct_note(f"{US}/users/bob")
    verdict = decide(act("Create", note, to=[f"{US}/users/bob"]), here=HERE, sender=STRANGER)
    assert (verdict.admit, verdict.reason) == (True, "addressed")


def test_policy__direct_note_to_someone_else_is_refused_before_any_key_fetch() -> None:
    note = direct_note(f"{THEM}/users/yan")
    verdict = decide(act("Create", note, to=[f"{THEM}/users/yan"]), here=HERE, sender=STRANGER)
    assert (verdict.admit, verdict.reason) == (False, "not_addressed")


def test_policy__direct_note_hosted_on_another_origin_is_refused() -> None:
    note = direct_note(f"{US}/users/bob", note_id="http://elsewhere.test/notes/1")
    verdict = decide(act("Create", note, to=[f"{US}/users/bob"]), here=HERE, sender=STRANGER)
    assert (verdict.admit, verdict.reason) == (False, "foreign_object")
