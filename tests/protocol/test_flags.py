"""Flags (reports across nodes): the door's decision and the parser, pure.

Given our node at http://us.test, when a Flag or an answer to one arrives from
http://them.test, then ``decide`` admits or refuses it and ``parse_flag`` cleans it.
"""

from __future__ import annotations

import pytest

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.flags import build_flag, build_flag_answer, parse_flag, parse_flag_answer
from meshnode.protocol.inbox_policy import Verdict, decide
from tests.protocol.test_inbox_policy import ACTOR, HERE, STRANGER, THEM, US, act


def decide_flag(objects: list[str], **extra: object) -> Verdict:
    return decide(act("Flag", objects, **extra), here=HERE, sender=STRANGER)


def test_policy__a_flag_from_a_stranger_about_our_listing_is_admitted() -> None:
    verdict = decide_flag([f"{US}/users/bob", f"{US}/listings/1"])
    assert (verdict.admit, verdict.reason) == (True, "addressed")


def test_policy__a_flag_about_nothing_of_ours_is_refused() -> None:
    verdict = decide_flag([f"{THEM}/listings/1"])
    assert (verdict.admit, verdict.reason) == (False, "not_addressed")


def test_policy__a_flag_with_an_oversized_comment_is_refused_before_any_key_fetch() -> None:
    verdict = decide_flag([f"{US}/listings/1"], content="x" * 1001)
    assert (verdict.admit, verdict.reason) == (False, "invalid")


def test_policy__an_answer_to_a_flag_on_another_origin_is_refused() -> None:
    answer = act("Accept", {"id": f"{THEM}/flags/1", "type": "Flag", "actor": ACTOR})
    verdict = decide(answer, here=HERE, sender=STRANGER)
    assert (verdict.admit, verdict.reason) == (False, "unknown_flag")


def test_policy__an_answer_to_our_flag_is_admitted_from_anyone() -> None:
    answer = act("Reject", {"id": f"{US}/flags/1", "type": "Flag", "actor": HERE.community})
    assert decide(answer, here=HERE, sender=STRANGER).admit


def test_parse_flag__html_is_stripped_and_a_string_object_is_a_list() -> None:
    flag = parse_flag(act("Flag", f"{US}/listings/1", content="<p>Bad <b>deal</b></p>",
                          summary="scam"))
    assert (flag.comment, flag.objects, flag.reason) == ("Bad deal", (f"{US}/listings/1",),
                                                         "scam")


@pytest.mark.parametrize("content", [123, "x" * 4001, "<i>" + "x" * 1001 + "</i>"])
def test_parse_flag__bad_content_is_refused(content: object) -> None:
    with pytest.raises(ValidationError):
        parse_flag(act("Flag", f"{US}/listings/1", content=content))


def test_flag_round_trip__our_flag_parses_and_its_answer_reads_back() -> None:
    flag = build_flag(flag_id=f"{US}/flags/1", actor=HERE.community,
                      objects=[f"{THEM}/users/zoe", f"{THEM}/listings/1"], comment="Spam",
                      reason="spam", published="2026-11-26T10:00:00Z")
    parsed = parse_flag(flag)
    assert (parsed.actor, parsed.comment, parsed.reason) == (HERE.community, "Spam", "spam")
    answer = build_flag_answer(answer_id=f"{THEM}/a/1", actor=f"{THEM}/groups/g",
                               flag_id=parsed.id, flag_actor=parsed.actor, decision="removed")
    assert answer["type"] == "Accept"
    assert parse_flag_answer(answer).decision == "removed"

