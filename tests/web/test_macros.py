"""The form helpers as Jinja globals (``web/macros.py``): the HTML the ``_macros.html``
macros wrote, escaping kept, and no template imports a template with context at its top
(such an import runs again on every render, issue 17)."""

from __future__ import annotations

import re
from pathlib import Path

from meshnode.web.templating import Templates

TEMPLATES = Path(__file__).resolve().parents[2] / "meshnode" / "web" / "templates"


def _render(source: str, **context: object) -> str:
    return Templates().env.from_string(source).render(**context)


def test_csrf_field__writes_the_pages_token_escaped() -> None:
    # Given a page whose token holds markup (a forged cookie)
    # When its form asks for the field
    html = _render("<form>{{ csrf_field() }}</form>", csrf_token='"><script>x</script>')
    # Then the field carries the token, escaped, exactly as the macro wrote it
    assert html == ('<form><input type="hidden" name="csrf" '
                    'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"></form>')


def test_error_for_and_described__a_refused_field_is_named_and_its_message_translated() -> None:
    # Given errors for a dotted field and for the whole form, a message holding markup
    errors = {"details.seats": "too <b>many</b>", "": "refused"}
    source = ('[{{ error_for(errors, "details.seats") }}][{{ described(errors, "details.seats") }}]'
              '[{{ error_for(errors, "") }}][{{ described(errors, "") }}]'
              '[{{ error_for(errors, "title") }}][{{ described(errors, "title") }}]')
    # When a template asks for each, with the page's own translation
    html = _render(source, errors=errors, _=lambda text: text.upper())
    # Then the messages are translated and escaped, ids use dashes, an accepted field is bare
    assert html == ('[<p class="error" id="err-details-seats">TOO &lt;B&gt;MANY&lt;/B&gt;</p>]'
                    '[ aria-invalid="true" aria-describedby="err-details-seats"]'
                    '[<p class="error" id="err-form">REFUSED</p>]'
                    '[ aria-invalid="true" aria-describedby="err-form"][][]')


def test_templates__no_top_level_import_with_context_of_the_form_helpers() -> None:
    # Given every template
    sources = {p.name: p.read_text() for p in TEMPLATES.rglob("*.html")}
    # Then none imports the old macros file, which is gone
    assert "_macros.html" not in sources
    assert not [name for name, text in sources.items() if "_macros.html" in text]
    # And the members' pages import nothing with context on every render
    for name in ("base.html", "search.html", "listing.html", "wallet.html", "home.html"):
        first_lines = sources[name].splitlines()[:3]
        assert not [line for line in first_lines if re.search(r"import .* with context", line)]
