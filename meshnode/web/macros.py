"""The form helpers every page's template calls, as Jinja globals (issue 17).

They were macros in ``_macros.html``, imported ``with context`` by 29 templates: such an
import runs the imported template again on every render (about 26 µs a page, for three
one-line macros). As globals marked ``pass_context`` they read the calling template's own
context (its ``csrf_token``, its ``_``), so a page pays only for the calls it makes.
Imported by ``web/templating.py`` when the environment is made (Jinja2 is loaded lazily).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

_NOTHING = Markup("")


def _error_id(name: str) -> str:
    """The id of a field's message, ``err-`` and the field's name with dots as dashes."""
    return name.replace(".", "-") or "form"


@pass_context
def csrf_field(context: Context) -> Markup:
    """The hidden field holding the page's CSRF token (``browser.read_form`` checks it)."""
    # An f-string of the escaped token: Markup's own % formatting costs several times more,
    # and a page writes this field up to eight times.
    return Markup(f'<input type="hidden" name="csrf" value="{escape(context["csrf_token"])}">')  # noqa: S704 - escaped


@pass_context
def error_for(context: Context, errors: Mapping[str, Any], name: str) -> Markup:
    """The message of a refused field, translated, or nothing. Services speak in lower case:
    the stylesheet capitalises the first letter (``p.error``)."""
    message = errors.get(name)
    if not message:
        return _NOTHING
    return Markup('<p class="error" id="err-%s">%s</p>') % (
        _error_id(name), context["_"](message))


def described(errors: Mapping[str, Any], name: str) -> Markup:
    """A refused field's ``aria-invalid`` and the id of its message, or nothing."""
    if not errors.get(name):
        return _NOTHING
    return Markup(' aria-invalid="true" aria-describedby="err-%s"') % _error_id(name)


GLOBALS = {"csrf_field": csrf_field, "error_for": error_for, "described": described}
