"""Pure rules behind names and signature verdicts (protocol/names.py, protocol/trust.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol.names import (
    NAME_MAX,
    Party,
    clean_text,
    handle_of,
    parse_deal_memo,
    remote_party,
)
from meshnode.protocol.trust import (
    RULE_REMOTE,
    SignatureCheck,
    SignatureStatus,
    failed,
    verdict,
)

KEY = "http://127.0.0.1:18081/users/camille#ed25519-key"
CHECK = SignatureCheck(True, KEY, "ABCD-EFGH-IJKL-MNOP", RULE_REMOTE, "2026-11-26T10:00:00Z")


def test_clean_text__bidi_override_zero_width_and_controls_are_dropped() -> None:
    assert clean_text("Ca\u202emille\u200b\x00\x1b[31m") == "Camille[31m"


def test_clean_text__newlines_and_tabs_become_one_space() -> None:
    assert clean_text("  Camille\n\tDupont\r\n ") == "Camille Dupont"


def test_clean_text__long_names_are_capped_with_an_ellipsis() -> None:
    cleaned = clean_text("x" * 10_000)
    assert len(cleaned) == NAME_MAX
    assert cleaned.endswith("…")


def test_clean_text__not_a_string_gives_nothing() -> None:
    assert clean_text({"name": "x"}) == ""
    assert clean_text(None) == ""


@given(st.text())
def test_clean_text__any_input_gives_one_short_printable_line(text: str) -> None:
    cleaned = clean_text(text)
    assert len(cleaned) <= NAME_MAX
    assert cleaned == cleaned.strip()
    assert not any(ch in cleaned for ch in "\n\r\t\x00\u202e\u2028")


def test_handle_of__user_at_host_and_port_with_hostile_characters_removed() -> None:
    assert handle_of("camille", "http://127.0.0.1:18081/users/camille") == \
        "camille@127.0.0.1:18081"
    assert handle_of("ca mi<lle>@evil", "https://Canal.Example/users/x") == \
        "camilleevil@canal.example"


def test_remote_party__uncached_actor_is_named_by_its_handle() -> None:
    party = remote_party("http://127.0.0.1:18081/users/camille", name="", username="")
    assert party == Party("camille@127.0.0.1:18081", "camille@127.0.0.1:18081",
                          "http://127.0.0.1:18081/users/camille")
    assert party.label == "camille@127.0.0.1:18081"


def test_party_label__name_and_handle() -> None:
    party = remote_party("http://h/users/camille", name="Camille", username="camille")
    assert party.label == "Camille · camille@h"
    assert party.to_json() == {"name": "Camille", "handle": "camille@h",
                               "actor": "http://h/users/camille"}


def test_parse_deal_memo__deal_and_refund_memos_link_their_deal() -> None:
    memo = parse_deal_memo("deal bab713e8c0ffee00: Covoiturage vers Lyon")
    assert memo is not None
    assert (memo.prefix, memo.deal_id, memo.rest) == (
        "deal ", "bab713e8c0ffee00", ": Covoiturage vers Lyon")
    refund = parse_deal_memo("refund, deal bab713e8c0ffee00: x")
    assert refund is not None
    assert refund.deal_id == "bab713e8c0ffee00"


def test_parse_deal_memo__other_memos_stay_text() -> None:
    assert parse_deal_memo("deal: Covoiturage") is None
    assert parse_deal_memo("pour le pain") is None
    assert parse_deal_memo("deal ../../admin: x") is None


def test_verdict__verified_while_the_author_still_lists_the_key() -> None:
    found = verdict(CHECK, {KEY: "ABCD-EFGH-IJKL-MNOP"})
    assert found.status is SignatureStatus.VERIFIED
    assert found.to_json()["verified"] is True


def test_verdict__key_withdrawn_or_replaced_under_the_same_id_is_a_key_change() -> None:
    assert verdict(CHECK, {}).status is SignatureStatus.KEY_CHANGED
    replaced = verdict(CHECK, {KEY: "ZZZZ-EFGH-IJKL-MNOP"})
    assert replaced.status is SignatureStatus.KEY_CHANGED
    assert (replaced.to_json()["verified"], replaced.to_json()["key_changed"]) == (False, True)


def test_verdict__failed_check_is_invalid_and_no_check_is_unchecked() -> None:
    bad = failed(RULE_REMOTE, "2026-11-26T10:00:00Z", "x" * 1000, KEY)
    assert verdict(bad, {KEY: "ABCD-EFGH-IJKL-MNOP"}).status is SignatureStatus.INVALID
    assert len(bad.error or "") == 200
    unchecked = verdict(None, None)
    assert unchecked.status is SignatureStatus.UNCHECKED
    assert unchecked.to_json()["checked_at"] is None
