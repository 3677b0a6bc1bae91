"""Babel's CLDR data read without its 2 MB global table (issue 17), with Babel's own results."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal

import pytest
from babel import Locale

from meshnode.web.cldr import UNUSED_LOCALE_DATA, LeanLocale, LocaleFiles
from meshnode.web.i18n import I18n, Translator
from tests.memload import REPO

MOMENTS = [dt.datetime(2026, 12, 2, 23, 5, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, 0, 0,
                                                                      tzinfo=dt.UTC)]


def both(lang: str) -> tuple[Translator, Translator]:
    lean = I18n.build(default=lang, timezone="Europe/Paris", symbol="G",
                      decimals=2).translators[lang]
    babel = Translator(lang, lean.translations, Locale.parse(lang), lean.tz, "G", 2)
    return lean, babel


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_lean_locale__formats_exactly_as_babels_locale(lang: str) -> None:
    # Given a translator on the lean locale and one on Babel's own Locale
    lean, babel = both(lang)
    assert isinstance(lean.locale, LeanLocale)
    # When dates, times, relative moments, amounts and numbers are formatted
    lean_texts, babel_texts = (formatted(t) for t in (lean, babel))
    # Then every string is Babel's
    assert lean_texts == babel_texts


def formatted(t: Translator) -> list[str]:
    """Every kind of value the pages format, in ``t``'s language."""
    return ([t.datetime(m, form) for m in MOMENTS for form in ("short", "medium", "long",
                                                               "full")]
            + [t.date(m) for m in MOMENTS] + [t.time(m) for m in MOMENTS]
            + [t.relative(MOMENTS[0], MOMENTS[0] + dt.timedelta(hours=h))
               for h in (-9000, -960, -50, -3, -0.01, 0.5, 1, 30, 24 * 15)]
            + [t.amount("1234.5"), t.number(1234567), t._value(Decimal("-0.50"))])


def test_lean_locale__leaves_out_the_tables_no_page_formats() -> None:
    # Given French as the node loads it
    french = LocaleFiles().load("fr")
    # Then the names of languages, territories, currencies... are not kept, and of the unit
    # patterns only the durations format_timedelta reads (the test above checks the results)
    assert not UNUSED_LOCALE_DATA & french.keys()
    assert french["unit_patterns"]
    assert all(unit.startswith("duration-") for unit in french["unit_patterns"])
    assert "date_fields" in french
    assert "meta_zones" in french


def test_lean_locale__root_is_read_once_for_both_languages() -> None:
    # Given one reader for the node's languages
    files = LocaleFiles()
    # When French and English are loaded
    french, english = files.load("fr"), files.load("en")
    # Then they inherit from the same root, as Babel's loader makes them
    assert french["months"] != english["months"]
    assert files._root is not None
    assert french["week_data"] == english["week_data"] == files._root["week_data"]
    # And the root kept between them is as lean as they are (its unit tables: 0.4 MB)
    assert not UNUSED_LOCALE_DATA & files._root.keys()
    assert all(unit.startswith("duration-") for unit in files._root["unit_patterns"])


def test_lean_locale__a_page_in_each_language_never_loads_babels_global_table() -> None:
    # Given a fresh interpreter (other tests may have loaded the table already)
    code = (
        "import datetime as dt, babel.core\n"
        "from meshnode.web.i18n import I18n\n"
        "i = I18n.build(default='fr', timezone='Europe/Paris', symbol='G', decimals=2)\n"
        "now = dt.datetime.now(dt.UTC)\n"
        "for t in i.translators.values():\n"
        "    t.datetime(now); t.relative(now, now); t.amount('3.5'); t.number(7)\n"
        "print(babel.core._global_data is None)\n"
    )
    # When every kind of value is formatted in French and English
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, check=True)
    # Then the global table (likely subtags, zone aliases: 2 MB) was never read
    assert result.stdout.strip() == "True"
