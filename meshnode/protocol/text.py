"""Plain text and a small, safe Markdown subset rendered to HTML for ``content``.

Everything is HTML-escaped first; only paragraphs, line breaks, ``**bold**``, ``*italic*`` and
``- `` bullet lists are produced, so no input can inject markup.
"""

from __future__ import annotations

import html
import re

_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*]+?)(?<=\S)\*(?![*\w])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str) -> str:
    """Normalise newlines and drop control characters a form or API client may send."""
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=True)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _ITALIC.sub(r"<em>\1</em>", escaped)


def render_markdown_subset(text: str) -> str:
    """Render the safe subset to HTML; the result contains no attribute and no other tag."""
    blocks = [block for block in re.split(r"\n\s*\n", clean_text(text)) if block.strip()]
    rendered: list[str] = []
    for block in blocks:
        lines = block.split("\n")
        if all(line.lstrip().startswith("- ") for line in lines):
            items = "".join(f"<li>{_inline(line.lstrip()[2:])}</li>" for line in lines)
            rendered.append(f"<ul>{items}</ul>")
        else:
            rendered.append("<p>" + "<br>".join(_inline(line) for line in lines) + "</p>")
    return "".join(rendered)


def html_to_text(markup: str) -> str:
    """Plain text of untrusted HTML (remote ``content``): every tag dropped by nh3
    (the Ammonia sanitiser), paragraphs and line breaks kept as newlines."""
    import nh3  # imported on first use: 1.5 MB of RSS an idle node does not need

    spaced = re.sub(r"(?i)<br\s*/?>", "\n", markup)
    spaced = re.sub(r"(?i)</p\s*>", "\n\n", spaced)
    return clean_text(html.unescape(nh3.clean(spaced, tags=set())))
