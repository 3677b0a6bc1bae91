"""The parsing layer: only ValidationError ever leaves it, naming the field; ranges hold."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshnode.protocol.errors import MalformedJSONError, ValidationError
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.parsing import (
    MAX_SQL_INT,
    parse_cursor,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_int,
)
from meshnode.protocol.timefmt import format_utc, normalise_utc, parse_utc

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
anything = st.one_of(
    st.text(), st.integers(), st.floats(), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=2), st.sampled_from(["²", "١٢", "9" * 20, "1" * 4400]),
    st.integers(min_value=0, max_value=10**40).map(str),
)


@given(value=anything)
def test_parse_int__any_value_is_in_range_or_a_validation_error_naming_the_field(
    value: object,
) -> None:
    try:
        number = parse_int(value, "seats", low=1, high=8)
    except ValidationError as exc:
        assert "seats" in exc.fields  # noqa: PT017 (a property: either outcome is checked)
    else:
        assert 1 <= number <= 8


@pytest.mark.parametrize("text", ["²", "0²", "١٢", "৪", "1" * 4400, "9" * 20, "1e3", "0x10",
                                  "1_000", "+5", "", " ", "True"])
def test_parse_int__unicode_digits_long_and_odd_forms_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_int(text, "limit", low=1, high=MAX_SQL_INT)
    assert caught.value.fields.keys() == {"limit"}


def test_parse_int__booleans_and_floats_are_not_counts() -> None:
    for value in (True, 2.0, float("nan")):
        with pytest.raises(ValidationError):
            parse_int(value, "quantity", low=0, high=10)
    assert parse_int(" 7 ", "quantity", low=0, high=10) == 7
    assert parse_int(-3, "delta", low=-5, high=5) == -3


@given(value=anything)
def test_parse_decimal__only_finite_bounded_decimals_pass(value: object) -> None:
    try:
        number = parse_decimal(value, "quantity", max_digits=9, places=3)
    except ValidationError as exc:
        assert "quantity" in exc.fields  # noqa: PT017 (a property: either outcome is checked)
    else:
        assert number.is_finite()
        assert abs(number) < 10**9
        assert -number.as_tuple().exponent <= 3  # type: ignore[operator]


@pytest.mark.parametrize("value", [1e308, "1e308", "10^30", 10**30, "NaN", "Infinity",
                                   float("inf"), "1.2345", "١.٥", "1,5"])
def test_parse_decimal__exponents_huge_values_and_unicode_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        parse_decimal(value, "quantity", max_digits=9, places=3)


def test_parse_decimal__plain_numbers_and_french_commas() -> None:
    assert parse_decimal(2.5, "q") == Decimal("2.5")
    assert parse_decimal(4.0, "q") == Decimal(4)
    assert parse_decimal("12,75", "q", comma=True, places=2) == Decimal("12.75")


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                  "0001-01-01T00:00:00Z", "9999-12-31T23:59", "2026-02-30T10:00Z",
                                  "2026-12-05T09:00:00", "2026-12-05", "२०२६-12-05T09:00Z"])
def test_parse_datetime__years_out_of_window_impossible_days_and_naive_times_are_refused(
    text: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_datetime(text, "departure", earliest=EARLIEST, latest=LATEST)
    assert "departure" in caught.value.fields


@given(when=st.datetimes(timezones=st.just(timezone(timedelta(hours=-12)))))
def test_parse_datetime__any_datetime_round_trips_or_is_refused_by_year(when: datetime) -> None:
    try:
        parsed = parse_datetime(when.isoformat(), "t", earliest=EARLIEST, latest=LATEST)
    except ValidationError:
        assert not EARLIEST <= when <= LATEST
    else:
        assert parsed == when


def test_parse_datetime__local_form_time_takes_the_communitys_zone() -> None:
    paris = timezone(timedelta(hours=1))
    parsed = parse_datetime("2026-12-05T09:00", "t", earliest=EARLIEST, latest=LATEST,
                            naive_tz=paris)
    assert parsed == datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["0001-01-01", "9999-12-31", "2026-02-30", "2026-2-3", "²"])
def test_parse_date__out_of_window_or_impossible_dates_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_date(text, "expires_at", earliest=date(2000, 1, 1), latest=date(2100, 1, 1))


@pytest.mark.parametrize("text", ["²", "9" * 20, str(MAX_SQL_INT + 1), "-1", "", "1.0"])
def test_parse_cursor__only_what_sqlite_can_hold(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_cursor(text)
    assert parse_cursor(str(MAX_SQL_INT)) == MAX_SQL_INT


@pytest.mark.parametrize("document", [b'{"a": 1' + b"0" * 4400 + b"}", b"[1e400]", b"[-1e999]",
                                      b"[0." + b"0" * 200 + b"1]"])
def test_loads_capped__numbers_beyond_any_use_are_malformed_json(document: bytes) -> None:
    with pytest.raises(MalformedJSONError):
        loads_capped(document)


@pytest.mark.parametrize(("document", "field"), [
    (b'{"title": "\\ud800"}', "title"), (b'{"details": {"from": "a\\udfffb"}}', "details.from"),
    (b'{"tags": ["ok", "\\udc00\\ud800"]}', "tags[1]"), (b'"\\ud800"', "body"),
])
def test_loads_capped__lone_surrogate_is_a_validation_error_on_its_field(
    document: bytes, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        loads_capped(document)
    assert field in caught.value.fields


def test_loads_capped__surrogate_pairs_and_escaped_backslashes_still_parse() -> None:
    assert loads_capped(b'["\\ud83d\\ude00", "\\\\ud800"]') == ["\U0001F600", "\\ud800"]


@pytest.mark.parametrize("value", [
    "2026-11-26T10:00:00Z", "2026-11-26T10:00:00+01:00", "2026-11-26T10:00:00.5Z",
    "1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z", "1969-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z", "2026-02-30T10:00:00Z", "2026-11-26 10:00:00Z", "soon",
    "2026-11-26t10:00:00z", " 2026-11-26T10:00:00Z", "\u0662\u0660\u0662\u0666-11-26T10:00:00Z",
    "2026-11-26T24:00:00Z", "2026-13-01T10:00:00Z",
])
def test_parse_utc__our_own_form_read_fast_gives_the_full_checks_result(value: str) -> None:
    """Given any text, parse_utc (which reads format_utc's form in one call) gives the
    instant the full checks give (UTC, whole seconds), or their refusal."""
    try:
        expected = parse_datetime(value, "created_at", earliest=EARLIEST,
                                  latest=LATEST).replace(microsecond=0)
    except ValidationError as exc:
        with pytest.raises(ValidationError, match=re.escape(str(exc))):
            parse_utc(value, field="created_at")
        return
    parsed = parse_utc(value, field="created_at")
    assert parsed == expected
    assert parsed.tzinfo == UTC
    assert parsed.microsecond == 0


@pytest.mark.parametrize("value", [
    "2026-11-26T10:00:00Z", "2026-11-26T10:00:00+01:00", "2026-11-26T10:00:00.5Z",
    "1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z", "1969-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z", "2026-02-30T10:00:00Z", "2026-11-26 10:00:00Z", "soon", 5, None,
    "2026-11-26t10:00:00z", " 2026-11-26T10:00:00Z", "\u0662\u0660\u0662\u0666-11-26T10:00:00Z",
    "2026-11-26T24:00:00Z", "2026-13-01T10:00:00Z", "2024-02-29T23:59:59Z",
])
def test_normalise_utc__gives_what_format_utc_of_parse_utc_gives(value: object) -> None:
    """Given any value, normalise_utc (which gives our own form back as it is) gives the text
    format_utc writes for parse_utc's instant, or parse_utc's refusal."""
    try:
        expected = format_utc(parse_utc(value, field="published"))
    except ValidationError as exc:
        with pytest.raises(ValidationError, match=re.escape(str(exc))):
            normalise_utc(value, field="published")
        return
    assert normalise_utc(value, field="published") == expected


@settings(max_examples=300)
@given(when=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31),
                         timezones=st.just(UTC)))
def test_normalise_utc__our_own_form_comes_back_unchanged(when: datetime) -> None:
    text = format_utc(when)
    assert normalise_utc(text, field="published") == text == format_utc(
        parse_utc(text, field="published"))
