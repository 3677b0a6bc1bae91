"""Error messages that pages can translate: English text that remembers its template.

``Text("only %(left)s seats left", left=2)`` *is* the English string ``"only 2 seats left"``
(a ``str``: the JSON API, logs and ``str(exc)`` are unchanged), and it keeps the template and
its values so the web layer can look the template up in the reader's catalogue and fill in
the values formatted for the reader's locale (``web/i18n.py: Translator.gettext``).
Values may be ``int`` (locale digits), ``Decimal`` (a number, its decimals kept), ``When``
(a UTC time, shown in the community's timezone), another ``Text`` (translated too) or any
other object (shown as ``str``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = ["N_", "Text", "message_of", "number"]


def N_(message: str) -> str:
    """Mark a literal message for the catalogues without changing it."""
    return message


class Text(str):
    """English text built from a translatable ``%(name)s`` template and its values."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, **values: Any) -> Text:
        self = super().__new__(cls, template % values if values else template)
        self.template = template
        self.values = values
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.template, self.values))


class When(str):
    """A UTC timestamp as ``format_utc`` writes it; pages show it in the community's timezone."""

    __slots__ = ()


def _rebuild(template: str, values: dict[str, Any]) -> Text:
    return Text(template, **values)


def number(text: str) -> Decimal | str:
    """A decimal amount as text (``"12.50"``) -> a Decimal a page formats per locale."""
    try:
        return Decimal(text)
    except ArithmeticError:
        return text


def message_of(error: BaseException) -> str:
    """The message an error was raised with, keeping its ``Text`` template when it has one."""
    first = error.args[0] if error.args else None
    return first if isinstance(first, Text) else str(error)
