"""French text rules: narrow no-break spaces, times without seconds, relative dates, contexts."""

from __future__ import annotations

import datetime as dt

import pytest

from meshnode.web.i18n import I18n, compile_catalog
from meshnode.web.memos import memo_sentence
from meshnode.web.typography import NNBSP, french_typography, missing_french_spaces


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n.build(default="fr", timezone="Europe/Paris", symbol="G", decimals=2)


@pytest.mark.parametrize(("typed", "expected"), [
    ("Réservation:", f"Réservation{NNBSP}:"),
    ("Réservation : %(x)s", f"Réservation{NNBSP}: %(x)s"),
    ("Vraiment?", f"Vraiment{NNBSP}?"),
    ("Merci !", f"Merci{NNBSP}!"),
    ("injoignable ; la vérification", f"injoignable{NNBSP}; la vérification"),
    ("« Bonjour »", f"«{NNBSP}Bonjour{NNBSP}»"),
    ("«\u00a0Bonjour\u00a0»", f"«{NNBSP}Bonjour{NNBSP}»"),
    ("%(left)s %(unit)s restants", "%(left)s\u00a0%(unit)s restants"),
])
def test_french_typography__narrow_space_before_high_signs_and_inside_guillemets(
    typed: str, expected: str
) -> None:
    assert french_typography(typed) == expected
    assert missing_french_spaces(expected) == []
    assert french_typography(expected) == expected  # applying it twice changes nothing


@pytest.mark.parametrize("text", [
    "https://exemple.org/a?b=c", "08:00", "%(host)s:%(port)s", "Tom &amp; Jerry", "«x",
])
def test_french_typography__urls_times_placeholders_and_entities_are_left_alone(
    text: str
) -> None:
    if text == "«x":
        assert french_typography(text) == f"«{NNBSP}x"
    else:
        assert french_typography(text) == text


def test_missing_french_spaces__finds_glued_and_breakable_signs() -> None:
    assert missing_french_spaces("Réservation: ok") != []
    assert missing_french_spaces("Réservation : ok") != []  # an ordinary space can break
    assert missing_french_spaces("« citation »") != []
    assert missing_french_spaces(f"Réservation{NNBSP}: ok, https://a.b 08:00") == []


def test_french_catalogue__every_compiled_translation_has_its_narrow_spaces() -> None:
    # Given the French catalogue as the node compiles it at start-up
    catalog = compile_catalog("fr")
    # Then no translation has a high sign or a guillemet without its narrow no-break space
    messages = catalog._catalog  # GNUTranslations keeps its entries there
    assert len(messages) > 300
    missing = {str(key): found for key, text in messages.items()
               if key and (found := missing_french_spaces(str(text)))}
    assert missing == {}


def test_translator__times_have_no_seconds_in_either_language(i18n: I18n) -> None:
    french, english = i18n.translators["fr"], i18n.translators["en"]
    assert french.datetime("2026-12-02T07:00:00Z") == "2 déc. 2026, 08:00"
    assert french.datetime("2026-12-02T07:00:00Z", "short") == "02/12/2026 08:00"
    assert french.time("2026-12-02T07:00:00Z") == "08:00"
    assert ":00:00" not in english.datetime("2026-12-02T07:00:00Z")


def test_translator__relative_dates_read_as_sentences(i18n: I18n) -> None:
    now = dt.datetime(2026, 12, 2, 7, tzinfo=dt.UTC)
    french = i18n.translators["fr"]
    assert french.relative("2026-12-05T07:00:00Z", now) == "dans 3 jours"
    assert french.relative("2026-12-02T05:00:00Z", now) == "il y a 2 heures"
    assert i18n.translators["en"].relative("2026-12-05T07:00:00Z", now) == "in 3 days"


def test_translator__recent_moments_read_as_ago_within_a_week(i18n: I18n) -> None:
    now = dt.datetime(2026, 12, 2, 7, tzinfo=dt.UTC)
    french = i18n.translators["fr"]
    assert french.recent("2026-12-02T04:00:00Z", now) == "il y a 3 heures"
    assert french.recent("2026-11-20T07:00:00Z", now) == "20/11/2026 08:00"
    assert french.recent("2026-12-03T07:00:00Z", now) == "03/12/2026 08:00"  # not in the past


def test_translator__paid_transfer_is_paye_but_a_paid_listing_is_payant(i18n: I18n) -> None:
    french = i18n.translators["fr"]
    assert french.gettext("Paid") == "Payant"  # the search filter: not free
    assert french.pgettext("transfer status", "Paid") == "Payé"
    assert french.pgettext("payee", "To") == "Bénéficiaire"
    assert french.gettext("To") == "Arrivée à"  # a ride's destination
    assert french.pgettext("slot start", "From") == "Du"
    # A context without its own entry falls back to the plain translation
    assert french.pgettext("transfer status", "In progress") == french.gettext("In progress")
    assert i18n.translators["en"].pgettext("transfer status", "Paid") == "Paid"


def test_french_catalogue__held_and_claimed_deposits_use_different_verbs(i18n: I18n) -> None:
    french = i18n.translators["fr"]
    held, claim = french.gettext("Deposit held"), french.gettext("Claim the deposit")
    assert "reten" not in held.lower()
    assert "reten" not in claim.lower()
    assert held.split()[-1] != claim.split()[0]


def test_memo_sentence__ledger_memos_read_as_french_sentences(i18n: I18n) -> None:
    french = i18n.translators["fr"]
    assert memo_sentence(french, "deal 1a2b3c4d5e6f: Perceuse") == (
        f"Réservation 1a2b3c4d…{NNBSP}: Perceuse")
    assert memo_sentence(french, "refund, deal 1a2b3c4d5e6f: Perceuse").startswith(
        "Remboursement de la réservation 1a2b3c4d…")
    assert memo_sentence(french, "deposit claimed: mandrin cassé") == (
        f"Caution gardée par l’auteur·e{NNBSP}: mandrin cassé")
    assert memo_sentence(french, "pour le pain") == "pour le pain"  # a member's own words
