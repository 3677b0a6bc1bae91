"""The network map's SVG (web/network_svg.py): deterministic, well-formed, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from meshnode.web import network_svg as svg

NS = "{http://www.w3.org/2000/svg}"
LABELS = {style: f"legend {style}" for style in svg.EDGE_STYLES}
HOSTILE = [
    '<script>alert("x")</script>',
    'Les "Voisins" \' & <b>Canal</b>',
    "]]><script>alert(1)</script><![CDATA[",
    "<!-- --><image href='x' onerror='alert(1)'/>",
    "null\x00byte\x01 and bidi\u202e",
]


def _draw(names: list[str], **extra: str) -> str:
    center = svg.MapNode("http://me", extra.get("center", "Ma <communauté>"), "self")
    others = [svg.MapNode(f"http://n{i}", name, "peer" if i % 2 else "heard")
              for i, name in enumerate(names)]
    edges = [svg.MapEdge(node.key, "failing" if i == 0 else "line", text=name)
             for i, (node, name) in enumerate(zip(others, names, strict=True))]
    return svg.render(center, others, edges, title=extra.get("title", "<title>"),
                      desc='desc "quoted" & <b>', labels=LABELS, ident='x"><script>')


def test_network_svg__hostile_community_names_parse_as_xml_with_no_injected_element() -> None:
    # When communities are named with markup, quotes, CDATA ends and control characters
    drawing = _draw(HOSTILE)
    # Then the SVG parses as XML
    root = ET.fromstring(drawing)
    assert root.tag == f"{NS}svg"
    # and it holds only the elements the drawing is made of: nothing injected
    tags = {element.tag.removeprefix(NS) for element in root.iter()}
    assert tags <= {"svg", "title", "desc", "line", "text", "g", "circle"}
    assert not any(tag in tags for tag in ("script", "image", "b", "foreignObject"))
    # and the names are there as text, not markup
    texts = [element.text or "" for element in root.iter(f"{NS}text")]
    assert any(t.startswith('<script>alert("x")') for t in texts)
    assert any(t.startswith("]]><script>") for t in texts)
    # and no attribute was broken open by a quote
    for element in root.iter():
        assert not any(name.startswith("on") for name in element.attrib)
    assert root.attrib["aria-labelledby"] == "xscript-title xscript-desc"
    assert root.attrib["role"] == "img"
    assert root.find(f"{NS}title").text == "<title>"  # type: ignore[union-attr]


def test_network_svg__same_data_gives_the_same_picture() -> None:
    names = [f"Community {i}" for i in range(12)]
    assert _draw(names) == _draw(list(names))


def test_network_svg__layout_puts_us_in_the_middle_and_everyone_inside_the_drawing() -> None:
    at = svg.layout("me", [f"p{i}" for i in range(150)], [f"h{i}" for i in range(49)])
    assert at["me"] == (svg.SIZE / 2, svg.SIZE / 2)
    assert len(at) == 200
    assert len(set(at.values())) == 200
    assert all(0 < x < svg.SIZE and 0 < y < svg.SIZE for x, y in at.values())


def test_network_svg__scales_to_a_narrow_screen() -> None:
    root = ET.fromstring(_draw(["a"]))
    assert root.attrib["width"] == "100%"
    assert root.attrib["viewBox"].startswith("0 0 ")
    assert "height" not in root.attrib
