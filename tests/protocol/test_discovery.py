"""TXT records, instance names and address choice (RFC 6763) — pure, hostile input named."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol.discovery import (
    MAX_TXT_BYTES,
    Advert,
    DuplicateTxtKeyError,
    TokenBucket,
    TxtFormatError,
    TxtTooLargeError,
    UnsupportedAdvertError,
    actor_url,
    build_txt,
    encode_txt,
    instance_name,
    parse_advert,
    parse_txt,
    select_addresses,
    short_fingerprint,
    verification_backoff,
)
from meshnode.protocol.multikey import ed25519_public_to_multikey

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
ADVERT = Advert(public_key=KEY, actor_path="/groups/voisins", community_name="Les Voisins")


def _pairs(**overrides: str) -> list[tuple[str, str]]:
    values = {"txtvers": "1", "pv": "1", "pk": ed25519_public_to_multikey(KEY),
              "path": "/groups/voisins", "name": "Les Voisins"}
    values.update(overrides)
    return list(values.items())


def test_build_txt__round_trips_with_txtvers_first() -> None:
    data = build_txt(ADVERT)
    assert data[1:10] == b"txtvers=1"
    assert parse_advert(data) == ADVERT
    assert list(parse_txt(data)) == ["txtvers", "pv", "pk", "path", "name"]


def test_build_txt__long_community_name_truncated_on_character_boundary() -> None:
    advert = Advert(KEY, "/groups/" + "v" * 30, "Épicerie solidaire " * 20)
    data = build_txt(advert)
    assert len(data) < 300  # "well under 400 bytes" (RFC 6763 §6.2)
    parsed = parse_advert(data)
    assert parsed.community_name.startswith("Épicerie solidaire")
    assert len(parsed.community_name.encode()) <= 100


@given(st.text(min_size=1, max_size=200).filter(lambda t: t.strip()))
def test_build_txt__any_name_parses_back_or_is_refused_cleanly(name: str) -> None:
    try:
        data = build_txt(Advert(KEY, "/groups/x", name))
    except TxtFormatError:
        return
    assert len(data) <= MAX_TXT_BYTES
    with contextlib.suppress(TxtFormatError):  # a name of only control characters
        assert parse_advert(data).public_key == KEY


def test_parse_advert__oversized_record_rejected() -> None:
    filler = bytes([250]) + b"x=" + b"a" * 248
    data = encode_txt(_pairs()) + filler + filler.replace(b"x=", b"y=")
    assert len(data) > MAX_TXT_BYTES
    with pytest.raises(TxtTooLargeError):
        parse_advert(data)


def test_parse_advert__duplicate_key_rejected_even_in_other_case() -> None:
    data = encode_txt(_pairs()) + encode_txt([("PK", ed25519_public_to_multikey(OTHER_KEY))])
    with pytest.raises(DuplicateTxtKeyError):
        parse_advert(data)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\x00", "empty string"),
        (b"\x20txtvers=1", "truncated length"),
        (encode_txt(_pairs()[1:]), "no txtvers"),
        (encode_txt(list(reversed(_pairs()))), "txtvers not first"),
        (encode_txt(_pairs(pk="z6Mkgarbage")), "bad key"),
        (encode_txt(_pairs(pk=ed25519_public_to_multikey(KEY)[:-2])), "short key"),
        (encode_txt(_pairs(path="../../etc/passwd")), "relative path"),
        (encode_txt(_pairs(path="/groups/../admin")), "dot-dot path"),
        (encode_txt(_pairs(path="//evil.example/x")), "scheme-relative path"),
        (encode_txt(_pairs(name="")), "empty name"),
        (encode_txt(_pairs(name="a\x07b")), "control character"),
        (encode_txt(_pairs(pv="one")), "pv not a number"),
        (encode_txt(_pairs()) + b"\x05flag!", "boolean/garbage entry"),
        (encode_txt(_pairs()) + b"\x0clongerkeyz=1", "key over nine chars"),
        (b"\x09txtvers=1" + bytes([5]) + b"pv=\xff\xfe", "not UTF-8"),
    ],
)
def test_parse_advert__garbage_rejected(data: bytes, why: str) -> None:
    with pytest.raises(TxtFormatError):
        parse_advert(data)


@pytest.mark.parametrize("pairs", [_pairs(txtvers="2"), _pairs(pv="2")])
def test_parse_advert__unknown_versions_refused(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(UnsupportedAdvertError):
        parse_advert(encode_txt(pairs))


@given(st.binary(max_size=600))
def test_parse_advert__random_bytes_never_crash(data: bytes) -> None:
    try:
        advert = parse_advert(data)
    except (TxtFormatError, TxtTooLargeError, UnsupportedAdvertError):
        return  # typed refusals only: anything else fails the test
    assert isinstance(advert, Advert)


def test_instance_name__same_community_name_different_keys_never_clash() -> None:
    first = instance_name("Les Voisins", KEY)
    second = instance_name("Les Voisins", OTHER_KEY)
    assert first != second
    assert first == f"Les Voisins ({short_fingerprint(KEY)})"


def test_instance_name__fits_one_dns_label() -> None:
    name = instance_name("Coopérative d'habitants. " * 10, KEY)
    assert len(name.encode()) <= 63
    assert "." not in name
    assert name.endswith(f"({short_fingerprint(KEY)})")


def test_select_addresses__routable_preferred_over_loopback_and_link_local() -> None:
    offered = ["127.0.0.1", "169.254.3.4", "fe80::1%2", "192.168.1.20", "fd00::5"]
    assert select_addresses(offered) == ("192.168.1.20", "fd00::5")


def test_select_addresses__loopback_kept_when_it_is_all_there_is() -> None:
    assert select_addresses(["127.0.0.1", "127.0.0.1"]) == ("127.0.0.1",)


def test_select_addresses__junk_dropped() -> None:
    assert select_addresses(["not-an-ip", "0.0.0.0", "224.0.0.251", "10.0.0.2"]) == ("10.0.0.2",)


def test_actor_url__ipv6_bracketed_and_bad_port_refused() -> None:
    assert actor_url("fd00::5", 8080, "/groups/x") == "http://[fd00::5]:8080/groups/x"
    with pytest.raises(TxtFormatError):
        actor_url("10.0.0.2", 8080, "http://evil/")
    with pytest.raises(Exception, match="port"):
        actor_url("10.0.0.2", 0, "/groups/x")


def test_token_bucket__burst_then_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert [bucket.take_at(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take_at(0.1)  # one token refilled after 100 ms
    assert not bucket.take_at(0.1)


def test_token_bucket__reservations_spread_over_time() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    delays = [bucket.reserve_at(0.0) for _ in range(5)]
    assert delays == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])


def test_verification_backoff__grows_and_caps() -> None:
    assert [verification_backoff(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert verification_backoff(50) == 300.0
