"""The network map as an SVG drawn on the server (no JavaScript): a deterministic layout and
the drawing, both pure (no clock, no randomness, no I/O), so the same data always gives the
same picture and tests can parse it.

Layout: this community in the centre, peers on an inner ring, communities only heard of on
an outer ring, each ring in the order given (by name). Every text is escaped for XML and
stripped of characters XML 1.0 forbids; labels are shortened (full names are in the table
under the picture). Accessibility: ``role="img"``, ``<title>`` and ``<desc>`` named by
``aria-labelledby``, and line styles that differ by dash pattern as well as colour.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

SIZE = 480  # the drawing's square, in viewBox units
LEGEND_HEIGHT = 120
LABEL_MAX = 20
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Edge styles: a CSS class, and what the legend says (key into the labels mapping).
EDGE_STYLES = ("peered", "requested", "line", "failing", "heard")


@dataclass(frozen=True)
class MapNode:
    """A community to draw: ``key`` is unique (its origin), ``kind`` one of ``NODE_ATTRS``."""

    key: str
    label: str
    kind: str


@dataclass(frozen=True)
class MapEdge:
    """A line from ``source`` (default: the centre) to ``key``, with a ``style`` from
    ``EDGE_STYLES`` and an optional short text (volume) written along it."""

    key: str
    style: str
    text: str = ""
    width: float = 1.5
    source: str | None = None


def text(value: str, limit: int | None = None) -> str:
    """``value`` safe inside an XML element or a double-quoted attribute."""
    cleaned = _NOT_XML.sub("", value)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return escape(cleaned, {'"': "&quot;", "'": "&apos;"})


def layout(center: str, inner: Sequence[str], outer: Sequence[str],
           size: float = SIZE) -> dict[str, tuple[float, float]]:
    """Positions (x, y) in a ``size`` square: ``center`` in the middle, rings around."""
    middle = size / 2
    found = {center: (middle, middle)}
    rings = ((inner, size * (0.25 if outer else 0.36)), (outer, size * 0.41))
    for keys, radius in rings:
        for index, key in enumerate(keys):
            # start at the top, clockwise; offset the outer ring so labels do not align
            angle = -math.pi / 2 + 2 * math.pi * index / max(len(keys), 1)
            if keys is outer and inner:  # between two peers, so labels do not collide
                angle += math.pi / len(inner)
            found[key] = (round(middle + radius * math.cos(angle), 1),
                          round(middle + radius * math.sin(angle), 1))
    return found


def _edge(edge: MapEdge, start: tuple[float, float], end: tuple[float, float]) -> list[str]:
    (x1, y1), (x2, y2) = start, end
    parts = [f'<line class="edge edge-{edge.style}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"'
             f' {EDGE_ATTRS[edge.style]} stroke-width="{edge.width:.1f}"/>']
    if edge.text:
        mx, my = round((x1 + x2) / 2, 1), round((y1 + y2) / 2 - 4, 1)
        parts.append(f'<text class="edge-text" x="{mx}" y="{my}" text-anchor="middle"'
                     f' font-size="14" {FONT}>'
                     f"{text(edge.text, 28)}</text>")
    return parts


def _node(node: MapNode, at: tuple[float, float]) -> list[str]:
    x, y = at
    radius = 14 if node.kind == "self" else 9
    below = round(y + radius + 15, 1)
    # labels near a side grow inwards, so they stay inside the drawing
    anchor = "end" if x > SIZE * 0.7 else "start" if x < SIZE * 0.3 else "middle"
    return [f'<g class="node node-{node.kind}">',
            f'<circle cx="{x}" cy="{y}" r="{radius}" {NODE_ATTRS[node.kind]}/>',
            f'<text x="{x}" y="{below}" text-anchor="{anchor}" font-size="16" {FONT}>'
            f"{text(node.label, LABEL_MAX)}</text>", "</g>"]


def _legend(labels: Mapping[str, str], top: float) -> list[str]:
    parts = [f'<g class="legend" transform="translate(12 {top})">']
    for row, style in enumerate(EDGE_STYLES):
        y = row * 22
        parts.append(f'<line class="edge edge-{style}" x1="0" y1="{y}" x2="36" y2="{y}"'
                     f' {EDGE_ATTRS[style]} stroke-width="2.5"/>')
        parts.append(f'<text x="44" y="{y + 5}" font-size="15" {FONT}>'
                     f"{text(labels[style], 60)}</text>")
    parts.append("</g>")
    return parts


# Presentation attributes, not a <style> element: the pages' Content-Security-Policy
# (style-src 'self') would drop inline CSS, and attributes also survive a copied file.
EDGE_ATTRS = {
    "peered": 'stroke="#374151"',
    "requested": 'stroke="#6b7280" stroke-dasharray="2 4"',
    "line": 'stroke="#15803d"',
    "failing": 'stroke="#b91c1c" stroke-dasharray="8 5"',
    "heard": 'stroke="#6b7280" stroke-dasharray="1 6" stroke-linecap="round"',
}
NODE_ATTRS = {
    "self": 'fill="#1d4ed8" stroke="#1f2937" stroke-width="2"',
    "peer": 'fill="#ffffff" stroke="#1f2937" stroke-width="2"',
    "heard": 'fill="#ffffff" stroke="#6b7280" stroke-width="2" stroke-dasharray="2 2"',
}
FONT = 'font-family="sans-serif" fill="#111827"'


def render(center: MapNode, others: Sequence[MapNode], edges: Sequence[MapEdge], *,
           title: str, desc: str, labels: Mapping[str, str], ident: str = "netmap") -> str:
    """The whole ``<svg>`` element (its own ``<style>``; scales to its container's width).

    ``labels`` names each edge style in the legend; ``ident`` prefixes element ids.
    """
    inner = [node.key for node in others if node.kind != "heard"]
    outer = [node.key for node in others if node.kind == "heard"]
    at = layout(center.key, inner, outer)
    height = SIZE + LEGEND_HEIGHT
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "", ident) or "netmap"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {height}"'
             f' width="100%" role="img" aria-labelledby="{safe_id}-title {safe_id}-desc"'
             ' class="network-map" preserveAspectRatio="xMidYMin meet">',
             f'<title id="{safe_id}-title">{text(title)}</title>',
             f'<desc id="{safe_id}-desc">{text(desc)}</desc>']
    for edge in edges:
        start = at.get(edge.source or center.key)
        if edge.key in at and start is not None:
            parts.extend(_edge(edge, start, at[edge.key]))
    for node in (center, *others):
        parts.extend(_node(node, at[node.key]))
    parts.extend(_legend(labels, SIZE + 10))
    parts.append("</svg>")
    return "\n".join(parts)
