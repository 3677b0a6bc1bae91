"""Direct Notes: what ``parse_direct_note`` accepts and refuses (pure, no network)."""

from __future__ import annotations

from typing import Any

import pytest

from meshnode.protocol.direct_messages import (
    MAX_RAW_CONTENT,
    build_direct_note,
    create_activity,
    is_direct_note,
    member_handle,
    parse_direct_note,
)
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.vocab import PUBLIC

ZOE = "http://them.test/users/zoe"
BOB = "http://us.test/users/bob"


def make(**changes: Any) -> dict[str, Any]:
    note = build_direct_note(note_id=f"{ZOE}/notes/1", author=ZOE, recipient=BOB, text="Salut",
                             published="2026-11-26T10:00:00Z",
                             in_reply_to="http://us.test/users/bob/notes/0",
                             context="http://them.test/listings/7")
    note.update(changes)
    return create_activity(note)


def test_parse_direct_note__round_trip_keeps_recipient_text_thread_and_listing() -> None:
    parsed = parse_direct_note(make())
    assert (parsed.author, parsed.recipient, parsed.text) == (ZOE, BOB, "Salut")
    assert parsed.in_reply_to == "http://us.test/users/bob/notes/0"
    assert parsed.context == "http://them.test/listings/7"


def test_create_activity__is_addressed_only_to_the_recipient() -> None:
    act = make()
    assert act["to"] == [BOB]
    assert "cc" not in act
    assert PUBLIC not in str(act)


@pytest.mark.parametrize("changes", [
    {"cc": [PUBLIC]}, {"to": [BOB, PUBLIC]}, {"to": ["as:Public"]}, {"bcc": ["http://x.test/u"]},
    {"audience": "http://them.test/users/zoe/followers"},
])
def test_parse_direct_note__public_or_wider_addressing_is_refused(
    changes: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError):
        parse_direct_note(make(**changes))


def test_parse_direct_note__create_addressed_to_someone_else_than_its_note_is_refused() -> None:
    act = make()
    act["to"] = ["http://us.test/users/carol"]
    with pytest.raises(ValidationError, match="different actors"):
        parse_direct_note(act)


def test_parse_direct_note__huge_html_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(ValidationError, match="longer than"):
        parse_direct_note(make(content="<p>" * (MAX_RAW_CONTENT // 3 + 1), mediaType="text/html"))


def test_parse_direct_note__html_is_reduced_to_text() -> None:
    parsed = parse_direct_note(make(content="<p>a<img src=x onerror=y>b</p>c<br>d",
                                    mediaType="text/html"))
    assert parsed.text == "ab\n\nc\nd"


def test_is_direct_note__feedback_notes_stay_deal_messages() -> None:
    act = make()
    act["object"]["feedbackFor"] = "http://us.test/deals/1"
    assert not is_direct_note(act)


@pytest.mark.parametrize("username", ["bob@trusted.example", "../admin", "", "a b", "x" * 65,
                                      "<script>", "bob?x=1"])
def test_member_handle__misleading_remote_usernames_are_refused(username: str) -> None:
    with pytest.raises(ValidationError, match="plain name"):
        member_handle(username, ZOE)


def test_member_handle__is_the_username_on_the_actor_host() -> None:
    assert member_handle("zoe", "http://Them.test:8081/users/zoe") == "zoe@them.test:8081"


def test_build_direct_note__text_travels_as_escaped_html_and_comes_back_unchanged() -> None:
    text = "Salut <b>Bob</b> & co\nligne 2\n\nparagraphe"
    note = build_direct_note(note_id=f"{ZOE}/notes/2", author=ZOE, recipient=BOB, text=text,
                             published="2026-11-26T10:00:00Z", recipient_handle="bob@us.test")
    assert "<b>" not in note["content"]
    assert note["tag"] == [{"type": "Mention", "href": BOB, "name": "@bob@us.test"}]
    assert parse_direct_note(create_activity(note)).text == text
