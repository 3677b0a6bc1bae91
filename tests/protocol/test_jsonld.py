"""Every document type meshnode emits, expanded by a real JSON-LD processor (PyLD).

The published contexts are vendored under ``meshnode/protocol/contexts/`` and served from
memory: any other URL makes the loader raise, so nothing is fetched (issue 15). The documents
are the ones ``scripts/make_examples.py`` builds with the real protocol code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pyld import jsonld  # type: ignore[import-untyped]

from meshnode.protocol.proofs import verify_proof
from scripts import make_examples

CONTEXTS = Path(__file__).resolve().parents[2] / "meshnode" / "protocol" / "contexts"
VENDORED = {
    "https://www.w3.org/ns/activitystreams": "activitystreams.json",
    "https://w3id.org/security/v1": "security-v1.json",
    "https://w3id.org/security/data-integrity/v1": "security-data-integrity-v1.json",
    "https://www.w3.org/ns/did/v1": "did-v1.json",
    "https://w3id.org/security/multikey/v1": "security-multikey-v1.json",
}
# Appended after a document's own context only in the "nothing dropped" check: a term the
# document's context does not define expands under this prefix instead of vanishing.
DROPPED = "urn:dropped:"
VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
EXAMPLES = make_examples.build_examples()
KEYS = {make_examples.ALICE: make_examples.ALICE_SEED, make_examples.BOB: make_examples.PEER_SEED,
        make_examples.GROUP_A: make_examples.NODE_SEED,
        make_examples.GROUP_B: make_examples.PEER_SEED,
        f"{make_examples.A}/users/carol": make_examples.NODE_SEED}


class UnvendoredContextError(Exception):
    """A document referenced a context URL we do not ship: tests never fetch."""


def _load_vendored(url: str, _options: object = None) -> dict[str, Any]:
    name = VENDORED.get(url)
    if name is None:
        raise UnvendoredContextError(url)
    document = json.loads((CONTEXTS / name).read_text(encoding="utf-8"))
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
            "document": document}


def expand(document: dict[str, Any]) -> list[Any]:
    """PyLD expansion with the vendored-only loader."""
    result: list[Any] = jsonld.expand(document, {"documentLoader": _load_vendored})
    return result


def _with_sentinel(document: dict[str, Any]) -> dict[str, Any]:
    context = document["@context"]
    context = context if isinstance(context, list) else [context]
    return {**document, "@context": [*context, {"@vocab": DROPPED}]}


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """(property IRI or "@type", value) for every node of an expanded document."""
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, dict):
        if node.get("@type") == "@json":
            return
        for key, value in node.items():
            if key == "@type":
                for type_iri in value if isinstance(value, list) else [value]:
                    yield "@type", type_iri
            elif not key.startswith("@"):
                yield key, value
            yield from _walk(value)


def _ids(node: Any) -> Iterator[str]:
    for key, value in _walk(node):
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and "@id" in item and key != "@type":
                yield item["@id"]


def _values(expanded: list[Any], prop: str) -> list[Any]:
    return [item for key, value in _walk(expanded) if key == prop for item in value]


def _key_of(seed: bytes) -> bytes:
    return make_examples.public_key(seed)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_jsonld__no_term_is_silently_dropped(name: str) -> None:
    # Given a document built by the real code, whose context gets a catch-all @vocab last
    document = EXAMPLES[name]
    # When a JSON-LD processor expands it
    expanded = expand(_with_sentinel(document))
    # Then every property and every type was defined by the document's own context
    undefined = sorted({iri for key, value in _walk(expanded)
                        for iri in ([value] if key == "@type" else [key])
                        if isinstance(iri, str) and iri.startswith(DROPPED)})
    assert undefined == [], f"{name}: terms missing from the @context: {undefined}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_jsonld__every_key_expands_and_every_iri_is_absolute(name: str) -> None:
    # Given a document expanded with its own context only
    document = EXAMPLES[name]
    expanded = expand(document)
    # Then the expansion is not empty, and every @id is an absolute IRI (not a relative
    # string a processor would resolve against the page it came from)
    assert expanded, f"{name} expanded to nothing"
    relative = [iri for iri in _ids(expanded) if not urlsplit(iri).scheme]
    assert relative == []


def test_jsonld__fep_0837_iris_are_iris_and_strings_are_strings() -> None:
    # Given every document that carries ValueFlows terms, expanded together
    expanded = [expand(document) for document in EXAMPLES.values()]
    # Then resourceConformsTo and satisfies are IRIs (Fedify's Intent refuses a literal:
    # issue 15), while action, purpose and hasUnit stay strings as FEP-0837 and Fedify read them
    conforms = _values(expanded, f"{VF}resourceConformsTo")
    assert len(conforms) >= 4
    assert all(set(item) == {"@id"} for item in conforms), conforms
    assert all(set(item) == {"@id"} for item in _values(expanded, f"{VF}satisfies"))
    for prop in (f"{VF}action", f"{VF}purpose", f"{OM2}hasUnit", f"{OM2}hasNumericalValue"):
        values = _values(expanded, prop)
        assert values, prop
        assert all(isinstance(item.get("@value"), str) for item in values), (prop, values)


def test_jsonld__listing_category_and_price_currency_expand_to_their_iris() -> None:
    # Given the listing Proposal
    expanded = expand(EXAMPLES["listing-proposal"])
    # Then the primary intent conforms to the category IRI and the price to the currency IRI
    conforms = {item["@id"] for item in _values(expanded, f"{VF}resourceConformsTo")}
    assert conforms == {"urn:meshnode:ns#category-ride", "https://a.example/currency"}


def test_jsonld__an_unvendored_context_is_never_fetched() -> None:
    # Given a document naming a context URL that is not vendored
    document = {"@context": "https://example.org/unknown-context", "name": "x"}
    # When it is expanded, Then the loader refuses instead of going to the network
    with pytest.raises(jsonld.JsonLdError) as caught:
        expand(document)
    cause = caught.value.__cause__
    assert isinstance(cause, UnvendoredContextError)
    assert str(cause) == "https://example.org/unknown-context"


@pytest.mark.parametrize("name", sorted(n for n in EXAMPLES if "proof" in EXAMPLES[n]))
def test_jsonld__proof_verifies_on_the_compacted_form(name: str) -> None:
    # Given a signed document, expanded and compacted again with its own context
    document = EXAMPLES[name]
    compacted = jsonld.compact(expand(document), document["@context"],
                               {"documentLoader": _load_vendored})
    # Then the compacted form means the same thing (same expansion) ...
    assert expand(compacted) == expand(document)
    # ... and every eddsa-jcs-2022 proof in it (embedded signed objects included) verifies on
    # the document as sent, its compact form
    checked = [_verify_each_proof(signed) for signed in _signed_objects(document)]
    assert sum(checked) >= 1


def _signed_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _signed_objects(item)
    elif isinstance(node, dict):
        if "proof" in node:
            yield node
        for key, value in node.items():
            if key != "proof":
                yield from _signed_objects(value)


def _verify_each_proof(document: dict[str, Any]) -> int:
    proofs = document["proof"] if isinstance(document["proof"], list) else [document["proof"]]
    for proof in proofs:
        owner = proof["verificationMethod"].split("#")[0]
        bare = {**{k: v for k, v in document.items() if k != "proof"}, "proof": proof}
        verify_proof(bare, public_key=_key_of(KEYS[owner]))
    return len(proofs)


def test_jsonld__a_term_missing_from_the_context_is_caught() -> None:
    # Given a feedback Note carrying a field its context does not define
    document = {**EXAMPLES["deal-feedback"], "stars": 5}
    # When it is expanded with the catch-all @vocab
    expanded = expand(_with_sentinel(document))
    # Then the check sees it; a plain expansion turns it into the blank-node property
    # "_:stars" (the ActivityStreams context's "@vocab": "_:"), which names nothing and which
    # RDF-based consumers drop
    assert any(key == f"{DROPPED}stars" for key, _ in _walk(expanded))
    assert "_:stars" in {key for key, _ in _walk(expand(document))}


def test_jsonld__the_old_listing_context_gave_fedify_a_literal_conformance() -> None:
    # Given the listing as sent before issue 15: resourceConformsTo without "@type": "@id"
    document = EXAMPLES["listing-proposal"]
    old_terms = {**document["@context"][2], "resourceConformsTo": "vf:resourceConformsTo"}
    old = {**document, "@context": [*document["@context"][:2], old_terms]}
    # Then it expands to a literal where FEP-0837 wants an IRI (what broke Intent.fromJsonLd)
    conforms = _values(expand(old), f"{VF}resourceConformsTo")
    assert conforms
    assert all("@value" in item and "@id" not in item for item in conforms)


def test_examples__committed_files_equal_what_the_script_produces() -> None:
    # Given the example files committed under docs/examples/
    folder = make_examples.EXAMPLES_DIR
    committed = {path.stem: path.read_text(encoding="utf-8") for path in folder.glob("*.json")}
    # Then they are exactly what scripts/make_examples.py writes from the code today
    expected = {name: make_examples.render(doc) for name, doc in EXAMPLES.items()}
    assert committed == expected, "run: python -m scripts.make_examples"


def test_examples__every_file_is_linked_from_the_federation_guide() -> None:
    # Given the federation guide
    guide = (make_examples.ROOT / "docs" / "federation.md").read_text(encoding="utf-8")
    # Then it links every example file, and every example it links exists
    linked = set(re.findall(r"\(examples/([a-z0-9-]+)\.json\)", guide))
    assert linked == set(EXAMPLES)
