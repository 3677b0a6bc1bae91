"""A moment relative to now ("dans 3 jours", "2 hours ago") is Babel's own text, made once
per unit, count and direction (``cldr.timedelta_shown``, issue 17): every delta gives what
``format_timedelta`` gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from meshnode.web import cldr
from meshnode.web.i18n import I18n

NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
I18N = I18n.build(default="fr", timezone="Europe/Paris", symbol="G", decimals=2)
EDGES = [0, 1, -1, 50, 51, 52, 59, 60, 61, 89, 90, 3059, 3060, 3061, 73_439, 73_440, 73_441,
         86_399, 86_400, 514_079, 514_080, 514_081, 604_800, 2_203_199, 2_203_200,
         26_805_599, 26_805_600, 31_536_000, 94_608_000]


def _expected(lang: str, delta: timedelta) -> str:
    return cldr.format_timedelta(delta, add_direction=True, locale=I18N.translators[lang].locale)


def test_relative__the_thresholds_between_units_give_babels_text() -> None:
    # Given deltas on both sides of each unit's threshold, in the future and the past
    for lang in ("fr", "en"):
        tr = I18N.translators[lang]
        for seconds in [*EDGES, *(-s for s in EDGES)]:
            delta = timedelta(seconds=seconds)
            # When the translator writes the moment twice (the second time from its memo)
            # Then both are Babel's own text for that delta
            assert tr.relative(NOW + delta, NOW) == _expected(lang, delta), (lang, seconds)
            assert tr.relative(NOW + delta, NOW) == _expected(lang, delta), (lang, seconds)
    assert cldr.TIMEDELTA_UNITS[-1] == ("second", 1)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-200_000_000, max_value=200_000_000), st.sampled_from(["fr", "en"]))
def test_relative__any_delta_gives_babels_text(seconds: int, lang: str) -> None:
    delta = timedelta(seconds=seconds)
    assert I18N.translators[lang].relative(NOW + delta, NOW) == _expected(lang, delta)
