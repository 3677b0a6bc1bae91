"""Saved-search input and word folding (pure): the folding agrees with SQLite's FTS5
``unicode61 remove_diacritics 2`` tokenizer that search uses, so an alert matches exactly
what a search with the same words finds."""

from __future__ import annotations

import sqlite3

import pytest

from meshnode.protocol.alerts import listing_wants, parse_alert
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.search_terms import fold, prefixes, query_terms, wanted_terms

WORDS = ["Vélo", "ÉCHELLE", "crème", "Noël", "garçon", "œuf", "Straße", "déjà-vu", "naïve",
         "Ångström", "tôle", "ÇA", "pâte", "cœur", "Łódź", "café3"]


def test_fold__agrees_with_the_fts5_tokenizer_search_uses() -> None:
    # Given SQLite's own tokenizer, as the listings index declares it
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize ="
               " 'unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
    for word in WORDS:
        db.execute("INSERT INTO t(x) VALUES (?)", (word,))
    indexed = sorted(row[0] for row in db.execute("SELECT term FROM v"))
    # Then our folding yields the very same terms
    ours = sorted({term for word in WORDS for term in query_terms(word)})
    assert ours == indexed


def test_prefixes__a_saved_word_matches_longer_words_with_or_without_accents() -> None:
    found = prefixes("Deux VÉLOS d'enfant")
    assert {"velo", "velos", "enfant", "enf", "d"} <= found
    assert "vélo" not in found  # folded
    assert fold("Échelle") == "echelle"


def test_parse_alert__every_wrong_field_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_alert({"q": "x" * 201, "kind": "gift", "category": "weapons", "near": "1000,0",
                     "radius_km": 0, "max_price": "-1", "colour": "red"}, decimals=2)
    assert set(refused.value.fields) == {"q", "kind", "category", "near", "radius_km",
                                         "max_price", "colour"}


def test_parse_alert__radius_needs_a_place_and_defaults_to_ten_km() -> None:
    alert = parse_alert({"q": "Vélo enfant", "near": "45.76,4.83"}, decimals=2)
    assert (alert.terms, alert.radius_km, alert.kind) == (("velo", "enfant"), 10.0, "offer")
    assert parse_alert({"q": "velo", "radius_km": 5}, decimals=2).radius_km is None
    assert parse_alert({"q": "velo", "max_price": "12,5"}, decimals=2).max_price == 1250
    with pytest.raises(ValidationError):
        parse_alert({"q": "velo", "max_price": 1_000_001}, decimals=2)


def test_listing_wants__a_request_wants_its_significant_words_a_swap_each_alternative() -> None:
    (ladder,) = listing_wants("request", "Cherche une échelle", "free", None)
    assert ladder.terms == ("echelle",)
    swaps = listing_wants("offer", "Vélo", "swap", "une perceuse, scie sauteuse ou ponceuse")
    assert [w.terms for w in swaps] == [("perceuse",), ("scie", "sauteuse"), ("ponceuse",)]
    assert listing_wants("offer", "Vélo", "free", "perceuse") == []
    assert wanted_terms("Looking for a drill") == ("drill",)
