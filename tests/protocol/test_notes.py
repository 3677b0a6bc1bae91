"""The Note a listing becomes for microblog followers, and who reads which document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from meshnode.protocol.listings.input import parse_listing_input
from meshnode.protocol.listings.model import CurrencyRef, ImageRef
from meshnode.protocol.listings.proposal import build_proposal
from meshnode.protocol.notes import (
    NoteSettings,
    build_note,
    context_reads_fep0837,
    nodeinfo_software,
    note_activity,
    note_id_for,
    note_tombstone,
    price_text,
    reader_for,
)
from meshnode.protocol.vocab import LISTING_CONTEXT, PUBLIC

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
BASE = "https://voisins.example"
OBJECT_ID = f"{BASE}/listings/abc"
GROUP = f"{BASE}/groups/voisins"


def proposal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "offer", "category": "group-buy", "title": "Achat groupé <de> pommes",
        "description": "Des **pommes** bio. " + "Très bonnes. " * 40,
        "price": {"mode": "amount", "amount": "12.5"},
        "location": {"name": "Marché du Canal"},
        "details": {"unit": "kg", "target_quantity": "50", "threshold": "20",
                    "deadline": "2026-12-10T10:00:00+00:00"},
    }
    data.update(overrides)
    draft = parse_listing_input(data, now=NOW, decimals=2)
    return build_proposal(
        draft, object_id=OBJECT_ID, actor_id=f"{BASE}/users/alice", published=NOW,
        updated=None, currency=CurrencyRef(uri=f"{BASE}/currency", code="G", decimals=2),
        images=[ImageRef(url=f"{BASE}/media/abc/1.jpg", media_type="image/jpeg", width=640,
                         height=480, alt="Les pommes"),
                ImageRef(url=f"{BASE}/media/abc/2.jpg", media_type="image/jpeg", width=64,
                         height=48)])


def settings(language: str = "fr") -> NoteSettings:
    return NoteSettings(note_id=note_id_for(OBJECT_ID), group_id=GROUP, currency_code="G",
                        language=language, tag_url=f"{BASE}/search?category={{category}}")


def test_build_note__carries_title_text_price_place_image_tag_and_link() -> None:
    # Given a signed-shape Proposal with two images, When it becomes a Note
    note = build_note(proposal(), settings())
    # Then it is a public, non-sensitive Note of the Group with Mastodon's conventions
    assert note["type"] == "Note"
    assert note["id"] == f"{OBJECT_ID}/note"
    assert note["attributedTo"] == GROUP
    assert note["to"] == [PUBLIC]
    assert note["cc"] == [f"{GROUP}/followers"]
    assert note["sensitive"] is False
    assert note["url"] == OBJECT_ID
    assert note["published"] == "2026-12-01T10:00:00Z"
    content = note["content"]
    assert "Achat groupé &lt;de&gt; pommes" in content  # escaped, never raw HTML
    assert "12.50 G" in content
    assert "Marché du Canal" in content
    assert f'href="{OBJECT_ID}"' in content
    assert note["contentMap"] == {"fr": content}
    # The hashtag: word characters only, linked in content with rel="tag"
    assert note["tag"] == [{"type": "Hashtag", "name": "#groupbuy",
                            "href": f"{BASE}/search?category=group-buy"}]
    assert 'class="mention hashtag" rel="tag">#<span>groupbuy</span></a>' in content
    # Only the first image, as an attachment with its alt text
    assert note["attachment"] == [{"type": "Image", "url": f"{BASE}/media/abc/1.jpg",
                                   "mediaType": "image/jpeg", "name": "Les pommes",
                                   "width": 640, "height": 480}]


def test_build_note__long_description_is_cut_to_a_short_text() -> None:
    note = build_note(proposal(), settings())
    paragraphs = note["content"].split("</p>")
    short = paragraphs[1]
    assert short.endswith("…")
    assert len(short) < 320
    assert "<strong>pommes</strong>" not in short  # markdown rendered to text, not HTML


def test_build_note__english_labels_and_content_map() -> None:
    note = build_note(proposal(), settings("en"))
    assert "Price: 12.50 G" in note["content"]
    assert list(note["contentMap"]) == ["en"]


def test_build_note__updated_is_copied_and_no_image_means_no_attachment() -> None:
    document = {**proposal(), "updated": "2026-12-02T10:00:00Z"}
    del document["image"]
    note = build_note(document, settings())
    assert note["updated"] == "2026-12-02T10:00:00Z"
    assert note["attachment"] == []


@pytest.mark.parametrize(("price", "expected"), [
    ({"mode": "free"}, "gratuit"),
    ({"mode": "swap"}, "échange"),
    ({"mode": "amount", "amount": "3", "period": "day"}, "3.00 G par jour"),
])
def test_price_text__free_swap_and_periods(price: dict[str, Any], expected: str) -> None:
    assert price_text(proposal(price=price), "G", "fr") == expected


def test_note_activity__delete_carries_a_tombstone_of_the_note() -> None:
    act = note_activity("Delete", note_tombstone(note_id_for(OBJECT_ID)), group_id=GROUP,
                        version=3, published="2026-12-02T10:00:00Z")
    assert act["object"] == {"id": f"{OBJECT_ID}/note", "type": "Tombstone"}
    assert act["actor"] == GROUP
    assert act["id"] == f"{OBJECT_ID}/note/activities/delete-3"


def test_note_activity__the_embedded_note_has_no_context_of_its_own() -> None:
    act = note_activity("Create", build_note(proposal(), settings()), group_id=GROUP,
                        version=1, published="2026-12-01T10:00:00Z")
    assert "@context" in act
    assert "@context" not in act["object"]


@pytest.mark.parametrize(("marker", "fep", "software", "expected"), [
    (True, False, "mastodon", "proposal"),  # our marker wins over what NodeInfo says
    (False, True, None, "proposal"),  # an actor declaring the FEP-0837 vocabulary
    (False, False, "meshnode", "proposal"),
    (False, False, " MeshNode ", "proposal"),
    (False, False, "mastodon", "note"),
    (False, False, "akkoma", "note"),
    (False, False, "Mitra", "proposal"),  # implements FEP-0837
    (False, False, None, "proposal"),  # NodeInfo unreadable: nothing known, historic default
])
def test_reader_for__meshnode_fep0837_and_unknown_get_proposals_named_microblogs_notes(
    marker: bool, fep: bool, software: str | None, expected: str,
) -> None:
    assert reader_for(marker=marker, context_reads_fep0837=fep, software=software) == expected


def test_context_reads_fep0837__our_listing_context_and_mitra_style_terms() -> None:
    assert context_reads_fep0837({"@context": LISTING_CONTEXT})
    assert context_reads_fep0837({"@context": ["https://www.w3.org/ns/activitystreams",
                                               "https://w3id.org/fep/0837"]})
    assert not context_reads_fep0837({"@context": ["https://www.w3.org/ns/activitystreams",
                                                   "https://w3id.org/security/v1"]})
    assert not context_reads_fep0837({})


@pytest.mark.parametrize(("document", "expected"), [
    ({"software": {"name": "mastodon"}}, "mastodon"),
    ({"software": {"name": "x" * 101}}, None),
    ({"software": {"name": ""}}, None),
    ({"software": "mastodon"}, None),
    ({"software": {"name": 3}}, None),
    ([], None),
    ("mastodon", None),
])
def test_nodeinfo_software__only_a_short_string_name_counts(document: object,
                                                            expected: str | None) -> None:
    assert nodeinfo_software(document) == expected
