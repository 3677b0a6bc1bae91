"""French and English: gettext catalogues compiled from the committed ``.po`` files at startup.

The ``.po`` sources live in ``web/locale/<lang>/LC_MESSAGES/messages.po``; they are compiled in
memory with Babel on the first page in that language (no ``.mo`` files to build or commit,
nothing written to the package directory; French takes ~70 ms). An idle node holds neither
Babel's catalogue reader nor the catalogues (issue 17: 1.4 MB, most of it the parser's
leftovers). Dates, numbers and amounts are formatted per locale with Babel (``web/cldr.py``,
imported with the first language too: 0.8 MB an idle node does not hold).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from meshnode.config import LOCALES
from meshnode.protocol.timefmt import parse_utc
from meshnode.protocol.translatable import N_ as N_  # re-exported for the pages
from meshnode.protocol.translatable import Text, When, message_of
from meshnode.web.typography import NNBSP, french_typography

if TYPE_CHECKING:
    from babel import Locale
    from babel.messages.catalog import Catalog

    from meshnode.web.cldr import LocaleFiles

MAX_ACCEPT_LANGUAGE = 400
# A plain path, as for the static files (web/pages/__init__.py): no zipfile import at start.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# Within this, a past moment reads better as "il y a 3 heures" than as a date.
RECENT = dt.timedelta(days=7)
# Formatted days, times of day, numbers and amounts kept per language (Babel takes 15-50 µs
# for each, and a wallet page shows about 150): emptied when full, and when the node is idle
# (web/idle.py). 5,000 entries are about 1.5 MB per language; 20,000 were up to 14 MB for
# two languages on a Pi that served many different pages (issue 17).
MEMO_SIZE = 5_000


__all__ = ["N_", "I18n", "Translator", "message_of", "negotiate"]


def compile_catalog(lang: str) -> gettext.GNUTranslations:
    """Compile ``messages.po`` of ``lang`` into a translations object, in memory."""
    from babel.messages.mofile import write_mo  # on the first page in a language only
    from babel.messages.pofile import read_po

    source = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    if lang == "fr":
        _apply_french_typography(catalog)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _apply_french_typography(catalog: Catalog) -> None:
    """Every French translation gets its narrow no-break spaces (web/typography.py)."""
    for message in catalog:
        if not message.id:  # the header: "Content-Type: …" must stay as it is
            continue
        if isinstance(message.string, str):
            message.string = french_typography(message.string)
        elif message.string:
            message.string = tuple(french_typography(form) for form in message.string)


def negotiate(accept_language: str, supported: tuple[str, ...] = LOCALES) -> str | None:
    """The best supported language for an ``Accept-Language`` header (RFC 9110 §12.5.4)."""
    return _negotiate(accept_language[:MAX_ACCEPT_LANGUAGE], supported)


# Pure, and browsers send the same few headers page after page (issue 17); the key is capped
# at MAX_ACCEPT_LANGUAGE characters, so 256 kept headers hold at most about 100 KiB.
@lru_cache(maxsize=256)
def _negotiate(accept_language: str, supported: tuple[str, ...]) -> str | None:
    choices: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in supported and quality > 0:
            choices.append((-quality, position, primary))
    return min(choices)[2] if choices else None


@dataclass(frozen=True)
class Translator:
    """Everything a page needs to speak one language: gettext plus locale-aware formatting."""

    lang: str
    translations: gettext.GNUTranslations
    locale: Locale
    tz: ZoneInfo
    currency_symbol: str
    currency_decimals: int
    # Pure results of the formatters below by (formatter, value, form): the same inputs
    # always give the same text in this language and timezone.
    _memo: dict[tuple[str, str, str], str] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def _remember(self, kind: str, value: object, form: str, make: Callable[[], str]) -> str:
        key = (kind, str(value), form)
        text = self._memo.get(key)
        if text is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            text = self._memo[key] = make()
        return text

    def forget(self) -> None:
        """Empty the formatting memo (an idle node gives the memory back: web/idle.py)."""
        self._memo.clear()

    def gettext(self, message: str, **values: Any) -> str:
        """Translate ``message``, then fill ``%(name)s`` placeholders (values are escaped later).

        A ``Text`` (an error message built from a template, protocol/translatable.py) is translated
        by its template, its values formatted for this locale.
        """
        if isinstance(message, Text) and not values:
            if not message.values:
                return self.translations.gettext(message.template)
            return self.translations.gettext(message.template) % {
                name: self._value(value) for name, value in message.values.items()}
        text = self.translations.gettext(message)
        return text % values if values else text

    @property
    def colon(self) -> str:
        """A colon a template writes after a label: French spaces it (web/typography.py)."""
        return NNBSP + ":" if self.lang == "fr" else ":"

    def pgettext(self, context: str, message: str, **values: Any) -> str:
        """Translate ``message`` in ``context`` (one English word, several French ones).

        Without an entry for that context, the plain translation is used.
        """
        text = self.translations.pgettext(context, message)
        if text == message:
            text = self.translations.gettext(message)
        return text % values if values else text

    def error(self, error: BaseException | str) -> str:
        """An error (or a field message) in this language; unknown messages stay English."""
        return self.gettext(message_of(error) if isinstance(error, BaseException) else error)

    def _value(self, value: Any) -> str:
        if isinstance(value, Text):
            return self.gettext(value)
        if isinstance(value, When):
            return self.datetime(str(value), "medium")
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            return str(value)
        if isinstance(value, Decimal):
            exponent = value.as_tuple().exponent
            places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
            pattern = "#,##0" + ("." + "0" * places if places else "")
            from meshnode.web import cldr  # imported with the first translator: no cost here

            return cldr.format_decimal(value, format=pattern, locale=self.locale)
        return self.number(value)

    def ngettext(self, singular: str, plural: str, count: int, **values: Any) -> str:
        """Plural-aware translation; ``%(count)s`` is available in the message."""
        text = self.translations.ngettext(singular, plural, count)
        return text % {"count": self.number(count), **values}

    def datetime(self, value: str | dt.datetime | None, form: str = "medium") -> str:
        """A stored UTC timestamp in the community's timezone and the reader's language."""
        if value is None:
            return ""
        local = self._local(value)
        if form not in ("short", "medium", "long"):
            from meshnode.web import cldr

            return cldr.format_datetime(local, form, tzinfo=self.tz, locale=self.locale)
        # Hours and minutes only ("08:00", not "08:00:00"): seconds mean nothing to a member.
        combined = str(self.locale.datetime_formats[form])
        return combined.replace("{1}", self._day(local.date(), form)).replace(
            "{0}", self._clock(local))

    def time(self, value: str | dt.datetime | None) -> str:
        """The time of day in the community's timezone, hours and minutes."""
        if value is None:
            return ""
        return self._clock(self._local(value))

    def _local(self, value: str | dt.datetime) -> dt.datetime:
        if isinstance(value, str):
            try:  # stored times were checked when stored: the C parser reads them (~1 µs)
                when = dt.datetime.fromisoformat(value)
            except ValueError:
                when = parse_utc(value, field="time")  # says what is wrong with it
        else:
            when = value
        if when.tzinfo is None:  # as Babel reads a naive time: UTC
            when = when.replace(tzinfo=dt.UTC)
        return when.astimezone(self.tz)

    def _day(self, day: dt.date, form: str) -> str:
        """A local date, formatted once per day and form (many times share a day)."""
        from meshnode.web import cldr

        return self._remember("day", day, form,
                              lambda: cldr.format_date(day, form, locale=self.locale))

    def _clock(self, local: dt.datetime) -> str:
        """A local time of day, formatted once per minute ("short": hours and minutes)."""
        from meshnode.web import cldr

        return self._remember("clock", local.strftime("%H:%M"), "", lambda: cldr.format_time(
            local, "short", tzinfo=self.tz, locale=self.locale))

    def recent(self, value: str | dt.datetime | None, now: dt.datetime) -> str:
        """A past moment: "il y a 3 heures" within a week, else the short date and time."""
        if value is None:
            return ""
        when = parse_utc(value, field="time") if isinstance(value, str) else value
        if dt.timedelta(0) <= now - when < RECENT:
            return self.relative(when, now)
        return self.datetime(when, "short")

    def relative(self, value: str | dt.datetime | None, now: dt.datetime) -> str:
        """How far ``value`` is from ``now`` ("dans 3 jours", "il y a 2 heures")."""
        if value is None:
            return ""
        when = parse_utc(value, field="time") if isinstance(value, str) else value
        from meshnode.web import cldr

        delta = when - now
        return self._remember("relative", cldr.timedelta_shown(delta.total_seconds()), "",
                              lambda: cldr.format_timedelta(delta, add_direction=True,
                                                            locale=self.locale))

    def date(self, value: str | dt.datetime | None, form: str = "long") -> str:
        """Just the date part, in the community's timezone."""
        if value is None:
            return ""
        return self._day(self._local(value).date(), form)

    def number(self, value: int | float | str | Decimal) -> str:
        """A number with the locale's separators."""
        return self._remember("number", value, "", lambda: self._number(value))

    def _number(self, value: int | float | str | Decimal) -> str:
        from meshnode.web import cldr

        try:
            return cldr.format_decimal(Decimal(str(value)), locale=self.locale)
        except InvalidOperation:
            return str(value)

    def amount(self, value: str | None) -> str:
        """An amount of the community currency, e.g. ``4,50 G`` in French."""
        if value is None:
            return ""
        return self._remember("amount", value, "", lambda: self._amount(value))

    def _amount(self, value: str) -> str:
        pattern = "#,##0" + ("." + "0" * self.currency_decimals if self.currency_decimals else "")
        from meshnode.web import cldr

        try:
            text = cldr.format_decimal(Decimal(value), format=pattern, locale=self.locale)
        except InvalidOperation:
            text = value
        return f"{text}\u00a0{self.currency_symbol}"


class Translators(Mapping[str, Translator]):
    """One ``Translator`` per supported language, each made (its catalogue compiled) on the
    first lookup of that language, then kept."""

    def __init__(self, make: Callable[[str], Translator], langs: tuple[str, ...]) -> None:
        self._make = make
        self._langs = langs
        self.made: dict[str, Translator] = {}

    def __getitem__(self, lang: str) -> Translator:
        translator = self.made.get(lang)
        if translator is None:
            if lang not in self._langs:
                raise KeyError(lang)
            translator = self.made[lang] = self._make(lang)
        return translator

    def __contains__(self, lang: object) -> bool:
        return lang in self._langs

    def __iter__(self) -> Iterator[str]:
        return iter(self._langs)

    def __len__(self) -> int:
        return len(self._langs)


@dataclass(frozen=True)
class I18n:
    """One ``Translator`` per language, made on the first page in that language."""

    translators: Translators
    default: str

    @classmethod
    def build(cls, *, default: str, timezone: str, symbol: str, decimals: int) -> I18n:
        """Ready to translate (each language's catalogue is compiled on its first use)."""
        tz = ZoneInfo(timezone)
        files: list[LocaleFiles] = []  # one reader for both languages (root read once)

        def make(lang: str) -> Translator:
            from meshnode.web.cldr import LeanLocale, LocaleFiles  # Babel: on the first page

            if not files:
                files.append(LocaleFiles())
            return Translator(lang, compile_catalog(lang), LeanLocale(lang, files[0]), tz,
                              symbol, decimals)

        return cls(translators=Translators(make, LOCALES), default=default)

    def choose(self, preference: str | None, accept_language: str) -> Translator:
        """Member preference, else the browser's ``Accept-Language``, else the node default."""
        if preference is not None and preference in self.translators:
            return self.translators[preference]
        negotiated = negotiate(accept_language, tuple(self.translators))
        return self.translators[negotiated or self.default]

    def forget(self) -> None:
        """Empty every language's formatting memo, and the memo of visitors'
        ``Accept-Language`` headers (strings a visitor chooses, 256 kept)."""
        for translator in self.translators.made.values():
            translator.forget()
        _negotiate.cache_clear()
