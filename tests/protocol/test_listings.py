"""Listing validation per category, FEP-0837 shape, round trip, signing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import nacl.signing
import pytest

from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.listings import (
    CATEGORIES,
    CurrencyRef,
    UnknownCategoryError,
    build_proposal,
    build_tombstone,
    merge_patch,
    parse_listing_input,
    parse_proposal,
)
from meshnode.protocol.proofs import create_proof, verify_proof
from meshnode.protocol.text import render_markdown_subset
from tests.conftest import ride_listing

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CURRENCY = CurrencyRef(uri="http://n.example/currency", code="G", decimals=2)

VALID_DETAILS: dict[str, dict[str, Any]] = {
    "lend": {"deposit": "20", "available_until": "2026-12-20T00:00:00Z"},
    "give": {},
    "swap": {"wanted": "des pots de confiture"},
    "sell": {"quantity": 2},
    "service": {"skill": "couture", "hours": "1.5"},
    "ride": {"from": "Canal", "to": "Lyon", "departure": "2026-12-05T09:00:00+01:00", "seats": 3},
    "meal": {"portions": 4, "pickup_time": "2026-11-27T18:30:00+01:00"},
    "produce": {"quantity": "2.5", "unit": "kg"},
    "group-buy": {
        "target_quantity": "100",
        "threshold": "60",
        "unit": "kg",
        "deadline": "2026-12-10T12:00:00Z",
    },
}


def listing(category: str, **overrides: Any) -> dict[str, Any]:
    return {
        "kind": "offer",
        "category": category,
        "title": f"Annonce {category}",
        "details": VALID_DETAILS[category],
        **overrides,
    }


@pytest.mark.parametrize("category", CATEGORIES)
def test_parse_listing_input__accepts_each_category(category: str) -> None:
    draft = parse_listing_input(listing(category), now=NOW, decimals=2)
    assert draft.category == category
    assert draft.status == "active"


def test_parse_listing_input__unknown_category_is_its_own_error() -> None:
    with pytest.raises(UnknownCategoryError):
        parse_listing_input({**listing("ride"), "category": "teleport"}, now=NOW, decimals=2)


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"from": "A", "to": "B", "departure": "2026-12-05T09:00:00Z"}, "details.seats"),
        (
            {"from": "A", "to": "B", "departure": "2026-11-01T09:00:00Z", "seats": 2},
            "details.departure",
        ),
        (
            {"from": "A", "to": "B", "departure": "2026-12-05T09:00:00", "seats": 2},
            "details.departure",
        ),
        (
            {"from": "A", "to": "B", "departure": "2026-12-05T09:00:00Z", "seats": 9},
            "details.seats",
        ),
        (
            {"from": "A", "to": "B", "departure": "2026-12-05T09:00:00Z", "seats": True},
            "details.seats",
        ),
        (
            {"from": "A", "to": "B", "departure": "2026-12-05T09:00:00Z", "seats": 2, "x": 1},
            "details.x",
        ),
    ],
)
def test_parse_listing_input__ride_field_errors(details: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_listing_input(listing("ride", details=details), now=NOW, decimals=2)
    assert field in excinfo.value.fields


def test_parse_listing_input__group_buy_threshold_above_target() -> None:
    details = {**VALID_DETAILS["group-buy"], "threshold": "150"}
    with pytest.raises(ValidationError) as excinfo:
        parse_listing_input(listing("group-buy", details=details), now=NOW, decimals=2)
    assert "details.threshold" in excinfo.value.fields


@pytest.mark.parametrize("amount", ["0", "-1", "NaN", "1e3", "1.234", "abc", 5, "99999999999999"])
def test_parse_listing_input__bad_prices(amount: object) -> None:
    data = listing("sell", price={"mode": "amount", "amount": amount})
    with pytest.raises(ValidationError) as excinfo:
        parse_listing_input(data, now=NOW, decimals=2)
    assert "price.amount" in excinfo.value.fields


def test_parse_listing_input__reports_every_bad_field_at_once() -> None:
    data = {
        "kind": "gift",
        "category": "give",
        "title": "x",
        "location": {"lat": 100, "lon": 0},
        "expires_at": "2020-01-01T00:00:00Z",
    }
    with pytest.raises(ValidationError) as excinfo:
        parse_listing_input(data, now=NOW, decimals=2)
    assert {"kind", "title", "location.lat", "expires_at"} <= excinfo.value.fields.keys()


def test_build_proposal__is_fep_0837_shaped() -> None:
    draft = parse_listing_input(ride_listing(), now=NOW, decimals=2)
    doc = build_proposal(
        draft,
        object_id="http://n.example/listings/1",
        actor_id="http://n.example/users/alice",
        published=NOW,
        updated=None,
        currency=CURRENCY,
    )
    assert doc["type"] == "Proposal"
    assert doc["purpose"] == "offer"
    assert doc["publishes"]["type"] == "Intent"
    assert doc["publishes"]["resourceQuantity"] == {"hasUnit": "seat", "hasNumericalValue": "3"}
    assert doc["reciprocal"]["resourceQuantity"]["hasNumericalValue"] == "4.50"
    assert doc["location"] == {
        "type": "Place",
        "name": "Quai du Canal",
        "latitude": 45.764,
        "longitude": 4.8357,
    }
    assert doc["published"] == "2026-11-26T10:00:00Z"
    assert "https://w3id.org/security/data-integrity/v1" in doc["@context"]


@pytest.mark.parametrize("category", CATEGORIES)
def test_parse_proposal__round_trips_each_category(category: str) -> None:
    draft = parse_listing_input(
        listing(category, price={"mode": "amount", "amount": "3"}), now=NOW, decimals=2
    )
    doc = build_proposal(
        draft,
        object_id="http://n.example/listings/1",
        actor_id="http://n.example/users/alice",
        published=NOW,
        updated=None,
        currency=CURRENCY,
    )
    assert parse_proposal(doc, decimals=2) == draft


def test_signed_proposal__verifies_and_any_mutation_fails() -> None:
    key = nacl.signing.SigningKey(bytes(range(32)))
    draft = parse_listing_input(ride_listing(), now=NOW, decimals=2)
    doc = build_proposal(
        draft,
        object_id="http://n.example/listings/1",
        actor_id="http://n.example/users/alice",
        published=NOW,
        updated=None,
        currency=CURRENCY,
    )
    signed = create_proof(
        doc,
        seed=bytes(range(32)),
        verification_method="http://n.example/users/alice#ed25519-key",
        created=NOW,
    )
    verify_proof(signed, public_key=bytes(key.verify_key))
    forged = {
        **signed,
        "reciprocal": {
            **signed["reciprocal"],
            "resourceQuantity": {"hasUnit": "G", "hasNumericalValue": "0.01"},
        },
    }
    with pytest.raises(ProofError):
        verify_proof(forged, public_key=bytes(key.verify_key))


def test_merge_patch__keeps_other_details_and_revalidates() -> None:
    draft = parse_listing_input(ride_listing(), now=NOW, decimals=2)
    patched = merge_patch(draft, {"details": {"seats": 2}}, now=NOW, decimals=2)
    assert patched.details["seats"] == 2
    assert patched.details["to"] == "Lyon"
    with pytest.raises(ValidationError):
        merge_patch(draft, {"details": {"seats": 0}}, now=NOW, decimals=2)


def test_build_tombstone__names_former_type() -> None:
    tomb = build_tombstone("http://n.example/listings/1", deleted=NOW)
    assert tomb["type"] == "Tombstone"
    assert tomb["formerType"] == "Proposal"


def test_render_markdown_subset__escapes_html() -> None:
    html = render_markdown_subset('<script>alert(1)</script> **gras** <img src=x onerror="y">')
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "<strong>gras</strong>" in html


def test_parse_proposal__without_source_takes_sanitised_text_of_content() -> None:
    draft = parse_listing_input(ride_listing(), now=NOW, decimals=2)
    doc = build_proposal(draft, object_id="http://n.example/listings/1",
                         actor_id="http://n.example/users/alice", published=NOW, updated=None,
                         currency=CURRENCY)
    del doc["source"]
    doc["content"] = '<p>Deux places</p><script>alert(1)</script><p>départ <a href="x">ici</a></p>'
    parsed = parse_proposal(doc, decimals=2)
    assert parsed.description == "Deux places\n\ndépart ici"
