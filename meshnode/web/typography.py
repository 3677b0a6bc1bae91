"""French typography for translated text: a narrow no-break space where French puts a space.

French sets a space before ``:``, ``;``, ``!``, ``?`` and inside ``« »``; the space must not
break the line away from the sign, so it is U+202F NARROW NO-BREAK SPACE (Imprimerie
nationale, *Lexique des règles typographiques*; Unicode TR14 on line breaking, class GL).
The French catalogue is passed through ``french_typography`` when it is compiled
(``web/i18n.py``), so every translated string follows the rule whatever its translator typed.

Pure text functions: no I/O. URLs (``https://``), times (``08:00``), ``%(name)s`` placeholders
and HTML entities (``&amp;``) are left alone, since the sign there is not followed by a space.
"""

from __future__ import annotations

import re

__all__ = ["NNBSP", "french_typography", "missing_french_spaces"]

NNBSP = "\u202f"

# Any spacing (ordinary, no-break, thin, narrow) a translator may have put before the sign.
_SPACES = "[ \u00a0\u2009\u202f]"
# A high sign ending a word, before a space, the end, a quote or a closing tag.
_HIGH_SIGN = re.compile(
    rf"(?<=[^\s&#;:!?]){_SPACES}?([:;!?])(?=[\s\u00a0»<)\"'’]|$)")
# ``&amp;``: an entity's own semicolon, never spaced.
_ENTITY = re.compile(r"&[A-Za-z0-9#]+;")
# A number and its unit stay on one line: "2,5 kg" (no-break space, not a breakable one).
_NUMBER_UNIT = re.compile(r"(%\([a-z_]+\)s) (%\(unit\)s)")
_OPEN_QUOTE = re.compile(rf"«{_SPACES}?")
_CLOSE_QUOTE = re.compile(rf"{_SPACES}?»")


def french_typography(text: str) -> str:
    """``text`` with a narrow no-break space before ``:;!?`` and inside ``« »``."""
    pieces: list[str] = []
    start = 0
    for entity in _ENTITY.finditer(text):
        pieces.append(_space_signs(text[start:entity.start()]))
        pieces.append(entity.group())
        start = entity.end()
    pieces.append(_space_signs(text[start:]))
    return "".join(pieces)


def _space_signs(text: str) -> str:
    text = _HIGH_SIGN.sub(lambda match: NNBSP + match.group(1), text)
    text = _NUMBER_UNIT.sub("\\1\u00a0\\2", text)
    text = _OPEN_QUOTE.sub("«" + NNBSP, text)
    return _CLOSE_QUOTE.sub(NNBSP + "»", text)


# A high sign glued to a word, or after an ordinary space (which a line may break at).
_MISSING = re.compile(r"(?:[^\s\u202f:;!?&]|[ \u00a0])[:;!?](?=\s|$)|«(?!\u202f)|(?<!\u202f)»")


def missing_french_spaces(text: str) -> list[str]:
    """Every place in ``text`` (plain text, no markup) where the French space is missing."""
    found: list[str] = []
    for match in _MISSING.finditer(_ENTITY.sub("", text)):
        found.append(text[max(0, match.start() - 20):match.end() + 5])
    return found
