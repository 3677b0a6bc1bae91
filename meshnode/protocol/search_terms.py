"""Search words folded the way the full-text index folds them, for matching saved searches.

Search runs in SQLite FTS5 with ``tokenize = 'unicode61 remove_diacritics 2'``
(https://sqlite.org/fts5.html#unicode61_tokenizer): words are runs of letters and digits,
case-folded, with diacritics removed, and every query word matches as a prefix (``"velo"*``,
``store/listings.fts_query``). Alerts are matched where a listing arrives, in Python and one
indexed query, so the same folding is written here once: ``vélo``, ``Velo`` and ``VÉLO`` are
all ``velo``; a saved ``velo`` matches a listing saying ``vélos``.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 8  # as store/listings.MAX_QUERY_TERMS: search reads the first 8 words
MAX_TERM_CHARS = 40  # a longer "word" is noise; prefixes are generated up to this length
# Words a request's title carries that say nothing of the thing wanted ("Cherche une
# échelle" wants an "echelle"); folded, French and English.
REQUEST_NOISE = frozenset({
    "cherche", "recherche", "recherchons", "cherchons", "besoin", "voudrais", "veux",
    "souhaite", "demande", "je", "j", "on", "nous", "un", "une", "des", "de", "du", "d", "le",
    "la", "les", "l", "pour", "avec", "sans", "ou", "et", "a", "au", "aux", "en", "sur",
    "looking", "wanted", "want", "need", "needed", "seeking", "search", "for", "an",
    "the", "or", "and", "to", "of", "with", "i", "we", "please", "svp",
})


def fold(text: str) -> str:
    """Lower-case and strip diacritics (NFKD, combining marks dropped), as unicode61 does
    (``lower``, not ``casefold``: the tokenizer keeps "ß")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def words(text: str) -> list[str]:
    """The folded words of ``text`` in order (duplicates kept)."""
    return [word[:MAX_TERM_CHARS] for word in _WORD.findall(fold(text))]


def query_terms(text: str) -> tuple[str, ...]:
    """The distinct folded words a search for ``text`` requires (at most 8, as search)."""
    return tuple(dict.fromkeys(words(text)[:MAX_QUERY_TERMS]))


def wanted_terms(text: str) -> tuple[str, ...]:
    """The significant words of a request title or a swap's "wanted" (noise words dropped)."""
    kept = [w for w in words(text) if w not in REQUEST_NOISE and len(w) > 1]
    return tuple(dict.fromkeys(kept))[:MAX_QUERY_TERMS]


def prefixes(text: str) -> frozenset[str]:
    """Every prefix of every folded word of ``text``: a saved term matches a listing when
    it is one of them (FTS5 prefix semantics, ``"term"*``)."""
    found: set[str] = set()
    for word in set(words(text)):
        found.update(word[:end] for end in range(1, len(word) + 1))
    return frozenset(found)
