"""Babel's CLDR data and formatting functions for the pages' languages (``web/i18n.py``).

Imported with the first ``Translator`` (the first page in any language), not at start: an
idle node does not hold Babel's dates and numbers modules (issue 17: 0.8 MB).
"""

from __future__ import annotations

import pickle
from typing import Any

from babel import Locale, localedata
from babel.dates import (
    TIMEDELTA_UNITS,
    format_date,
    format_datetime,
    format_time,
    format_timedelta,
)
from babel.numbers import format_decimal

__all__ = ["UNUSED_LOCALE_DATA", "LeanLocale", "LocaleFiles", "format_date", "format_datetime",
           "format_decimal", "format_time", "format_timedelta", "lean_locale_data",
           "timedelta_shown"]

# CLDR tables of a language that none of the Babel functions we call reads (format_decimal,
# format_date, format_datetime, format_time, format_timedelta): names of languages,
# territories, scripts, currencies and units, compact and interval formats, skeletons.
UNUSED_LOCALE_DATA = frozenset({
    "languages", "territories", "scripts", "variants", "currency_names",
    "currency_names_plural", "unit_display_names", "compact_decimal_formats",
    "compact_currency_formats", "interval_formats", "datetime_skeletons",
    "compound_unit_patterns",
})


class LocaleFiles:
    """Babel's CLDR data for our languages, read from Babel's own files, ``root`` once.

    Babel's loader reads its whole global table (2 MB resident: likely subtags, time-zone
    aliases…) only to learn that a language without a territory inherits from ``root``;
    this reader merges ``root`` and the language exactly as Babel does and skips that table
    (issue 17: 2.4 MB less from the first page on). Anything else Babel needs later it
    still loads itself.
    """

    def __init__(self) -> None:
        self._root: dict[Any, Any] | None = None

    @staticmethod
    def _read(name: str) -> dict[Any, Any]:
        with open(localedata.resolve_locale_filename(name), "rb") as handle:
            data: dict[Any, Any] = pickle.load(handle)  # noqa: S301 - Babel's own data files
            return data

    def load(self, lang: str) -> dict[Any, Any]:
        """``root`` with ``lang``'s data merged in (``babel.localedata.load``'s result), less
        what no page formats (``UNUSED_LOCALE_DATA``)."""
        if self._root is None:  # kept lean too: root's unit tables alone are 0.4 MB
            self._root = lean_locale_data(self._read("root"))
        data = self._root.copy()
        localedata.merge(data, self._read(lang))
        return lean_locale_data(data)


def lean_locale_data(data: dict[Any, Any]) -> dict[Any, Any]:
    """``data`` without the CLDR tables our formatting never reads (``UNUSED_LOCALE_DATA``),
    its unit patterns cut to the durations ``format_timedelta`` uses (issue 17: about 0.8 MB
    per language; a page that needed one would fail its test with a ``KeyError``)."""
    lean = {key: value for key, value in data.items() if key not in UNUSED_LOCALE_DATA}
    units = data.get("unit_patterns", {})
    lean["unit_patterns"] = {unit: forms for unit, forms in units.items()
                             if unit.startswith("duration-")}
    return lean


class LeanLocale(Locale):
    """A Babel ``Locale`` of a plain language (``fr``, ``en``) whose data ``LocaleFiles``
    reads on first use; every Babel function takes it like any ``Locale``."""

    def __init__(self, language: str, files: LocaleFiles) -> None:
        super().__init__(language)
        self._files = files
        self._lean: localedata.LocaleDataDict | None = None

    @property
    def _data(self) -> localedata.LocaleDataDict:
        if self._lean is None:
            self._lean = localedata.LocaleDataDict(self._files.load(self.language))
        return self._lean


TIMEDELTA_THRESHOLD = 0.85  # format_timedelta's default


def timedelta_shown(seconds: float) -> tuple[str, int, bool]:
    """What ``format_timedelta(delta, add_direction=True)`` (threshold 0.85, granularity
    "second", its defaults) writes depends on: the unit it picks, the count it rounds to and
    the direction. The same steps as Babel's, so a text made once serves every delta with
    this key (a listing page's "dans 3 jours" cost a Babel call each time, issue 17)."""
    for unit, per_unit in TIMEDELTA_UNITS[:-1]:  # years down to minutes
        value = abs(seconds) / per_unit
        if value >= TIMEDELTA_THRESHOLD:
            return unit, round(value), seconds >= 0
    # seconds, the granularity: at least one unless no time at all
    return "second", round(max(1, abs(seconds)) if seconds else 0), seconds >= 0
