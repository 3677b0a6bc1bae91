"""Reading inbound JSON-LD in our compact names (protocol/ldread.py, issue 15).

The Fedify document is a capture of what Fedify 2.3.6's ``sendActivity`` POSTed to our inbox
(tests/interop/test_fedify_server.py), with its 127.0.0.1 origin replaced by
``https://fedify.example`` (so its signatures no longer verify: only its shape matters here).
PyLD, with the vendored contexts only, is the oracle: a normalised document must expand to
the same triples as the document it came from.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyld import jsonld  # type: ignore[import-untyped]

from meshnode.protocol import ldread
from meshnode.protocol.ldread import (
    CONTEXT_FILES,
    ContextError,
    Normalised,
    known_terms,
    needs_normalising,
    normalise,
    read_document,
    signed_form,
)
from meshnode.protocol.listings import parse_proposal
from meshnode.protocol.receipts import RECEIPT_CONTEXT
from meshnode.protocol.vocab import AS_CONTEXT, LISTING_CONTEXT, VALUEFLOWS
from meshnode.services.receipts import UPDATE_CONTEXT
from scripts import make_examples

CAPTURED = Path(__file__).parent / "captured" / "fedify-send-activity-create.json"
CONTEXTS = Path(ldread.__file__).parent / "contexts"
EXAMPLES = make_examples.build_examples()


def _fedify_create() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(CAPTURED.read_text(encoding="utf-8"))
    return document


def _load_vendored(url: str, _options: object = None) -> dict[str, Any]:
    document = json.loads((CONTEXTS / CONTEXT_FILES[url]).read_text(encoding="utf-8"))
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
            "document": document}


def _expand(document: Any) -> Any:
    return jsonld.expand(json.loads(json.dumps(document)), {"documentLoader": _load_vendored})


def _untyped_values(expanded: Any) -> Any:
    if isinstance(expanded, list):
        return [_untyped_values(item) for item in expanded]
    if isinstance(expanded, dict):
        if "@value" in expanded:
            return {"@value": expanded["@value"]}
        return {key: _untyped_values(value) for key, value in expanded.items()}
    return expanded


def _proposal() -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(EXAMPLES["listing-proposal"])
    document.pop("proof")
    return document


def _prefixed(document: dict[str, Any]) -> dict[str, Any]:
    """Our Proposal written with vf: CURIEs and full IRIs instead of our compact terms."""
    out = dict(document)
    out["type"] = "vf:Proposal"
    out["vf:purpose"] = out.pop("purpose")
    intent = dict(out.pop("publishes"))
    intent["type"] = f"{VALUEFLOWS}Intent"
    intent[f"{VALUEFLOWS}resourceConformsTo"] = {"id": intent.pop("resourceConformsTo")}
    out[f"{VALUEFLOWS}publishes"] = intent
    return out


# --- the fast path ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_needs_normalising__every_document_we_emit_keeps_the_fast_path(name: str) -> None:
    # Given each document type meshnode sends (docs/examples, built by the real code)
    # Then none needs JSON-LD processing: it is read as it is, the same object
    assert needs_normalising(EXAMPLES[name]) is False
    assert read_document(EXAMPLES[name]).document is EXAMPLES[name]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_normalise__our_own_documents_come_back_unchanged(name: str) -> None:
    # Even forced through the slow path, our compact names are already the answer
    assert normalise(EXAMPLES[name]).document == EXAMPLES[name]


@pytest.mark.parametrize("document", [
    {"@context": AS_CONTEXT, "type": "Create", "object": {"type": "vf:Proposal"}},
    {"@context": AS_CONTEXT, "type": f"{VALUEFLOWS}Proposal"},
    {"@context": [AS_CONTEXT, {"x": "urn:x#"}], "type": "Create"},
    {"@context": AS_CONTEXT, "type": "Create", "object": {"@context": ["urn:other"]}},
    {"type": "Create"},
    {"@context": AS_CONTEXT, "type": "Note", "as:content": "x"},
    {"@context": AS_CONTEXT, "@type": "Note"},
    {"@context": LISTING_CONTEXT, "type": "Proposal",
     "publishes": [{"type": "Intent", f"{VALUEFLOWS}action": "transfer"}]},
], ids=["prefixed-object-type", "full-iri-type", "other-context", "object-context", "none",
        "prefixed-key", "keyword-key", "nested-full-iri-key"])
def test_needs_normalising__other_contexts_or_iri_types_take_the_slow_path(
        document: dict[str, Any]) -> None:
    assert needs_normalising(document) is True


def test_needs_normalising__a_normalised_copy_is_never_normalised_again() -> None:
    reading = normalise(_fedify_create())
    assert needs_normalising(reading.document) is False
    assert read_document(reading.document).document is reading.document


# --- what Fedify and FEP-0837 writers send -------------------------------------------------


def test_normalise__fedify_send_activity_create_reads_as_our_listing_create() -> None:
    # Given the Create Fedify's sendActivity wrote: full IRIs for the Proposal's type and
    # ValueFlows properties, a typed literal for the quantity, a node reference for the IRI
    original = _fedify_create()
    reading = normalise(original)
    act = reading.document
    obj = act["object"]
    # Then it reads in our compact names, with nothing unknown among its contexts
    assert reading.unknown_contexts == ()
    assert (act["type"], obj["type"], obj["purpose"]) == ("Create", "Proposal", "offer")
    assert obj["publishes"] == {
        "type": "Intent", "action": "transfer",
        "resourceConformsTo": "urn:meshnode:ns#category-give",
        "resourceQuantity": {"type": "http://www.ontology-of-units-of-measure.org/resource/"
                             "om-2/Measure", "hasNumericalValue": "1", "hasUnit": "one"}}
    assert (obj["name"], obj["content"]) == ("Une échelle", "À prêter")
    # and the proof is untouched, the signed form is the object exactly as received
    assert obj["proof"] == original["object"]["proof"]
    assert isinstance(obj, Normalised)
    assert signed_form(obj) is original["object"]
    assert signed_form(original["object"]) is original["object"]


def test_normalise__fedify_object_means_the_same_as_our_compact_copy() -> None:
    # Given the Fedify Proposal under the Create's context, and our copy under ours
    original = _fedify_create()
    theirs = {**original["object"], "@context": original["@context"]}
    ours = {**normalise(original).document["object"], "@context": LISTING_CONTEXT}
    theirs.pop("proof")
    ours.pop("proof")
    # Then PyLD expands both to the same statements, but for the datatype of the quantity
    # ("1"^^xsd:decimal): we read a typed literal as its string, as our own context writes it
    assert _expand(ours) == _untyped_values(_expand(theirs))
    assert _expand(ours) != _expand(theirs)


def test_normalise__prefixed_and_full_iri_proposal_reads_as_ours() -> None:
    # Given our Proposal written with vf:Proposal, vf:purpose and full-IRI properties
    compact = _proposal()
    prefixed = _prefixed(compact)
    # Then it means the same (PyLD) and normalises back to our compact form, field for field
    assert _expand(prefixed) == _expand(compact)
    normalised = normalise(prefixed).document
    assert json.loads(json.dumps(normalised)) == json.loads(json.dumps(compact)) | {
        "@context": compact["@context"]}
    draft = parse_proposal(normalised, decimals=2)
    assert draft.title == compact["name"]


def test_normalise__terms_defined_in_a_context_we_do_not_list_keep_their_names() -> None:
    # Given a receipt Update (its context is built in services/, so it is not one the fast
    # path knows): its own term dealReceipt is none of our names
    update = {"@context": UPDATE_CONTEXT, "id": "https://a.example/deals/1/receipt/1",
              "type": "Update", "actor": "https://a.example/users/alice",
              "object": {"type": "Agreement", "id": "https://b.example/deals/1",
                         "dealReceipt": {"@context": RECEIPT_CONTEXT, "type": "DealReceipt",
                                         "id": "https://a.example/receipts/1"}}}
    assert needs_normalising(update) is True
    # Then it reads back exactly as written
    assert normalise(update).document == update


def test_normalise__a_term_the_sender_redefined_is_not_read_as_ours() -> None:
    # Given a document that maps "purpose" to another vocabulary
    document = {"@context": [AS_CONTEXT, {"purpose": "https://evil.example/ns#purpose"}],
                "type": "Note", "purpose": "offer"}
    # Then the copy names it by its IRI: our readers never see a "purpose"
    normalised = normalise(document).document
    assert "purpose" not in normalised
    assert normalised["https://evil.example/ns#purpose"] == "offer"


def test_normalise__unknown_context_urls_are_listed_never_fetched() -> None:
    # Given a Follow naming an unknown context URL (Akkoma names one on its own host)
    document = {"@context": [AS_CONTEXT, "https://akkoma.example/schemas/litepub-0.1.jsonld"],
                "type": "Follow", "actor": "https://akkoma.example/users/a"}
    # Then (a pure function: there is nothing it could fetch with) it is listed, and the
    # terms it would define are left as written
    reading = normalise(document)
    assert reading.unknown_contexts == ("https://akkoma.example/schemas/litepub-0.1.jsonld",)
    assert reading.document["type"] == "Follow"


# --- hostile contexts ----------------------------------------------------------------------


def _timed_refusal(document: dict[str, Any]) -> str:
    """The refusal message; the time is printed (never asserted: figures go to scripts/)."""
    started = time.perf_counter()
    with pytest.raises(ContextError) as caught:
        normalise(document)
    print(f"refused in {1000 * (time.perf_counter() - started):.2f} ms")
    return str(caught.value)


def test_normalise__a_context_of_10000_terms_is_refused_before_it_is_read() -> None:
    terms = {f"t{n}": f"https://evil.example/ns#t{n}" for n in range(10_000)}
    assert "more than 512 terms" in _timed_refusal(
        {"@context": [AS_CONTEXT, terms], "type": "Create"})


def test_normalise__ten_thousand_contexts_in_one_array_are_refused() -> None:
    assert "more than 32 entries" in _timed_refusal(
        {"@context": [{"a": "urn:a"}] * 10_000, "type": "Create"})


def test_normalise__a_context_on_every_nested_object_is_capped() -> None:
    node: dict[str, Any] = {"type": "Note"}
    for _ in range(100):
        node = {"@context": {"x": "urn:x"}, "type": "Note", "content": node}
    assert "more than 64 @context" in _timed_refusal(node)


def test_normalise__a_document_of_thousands_of_small_objects_is_refused() -> None:
    # 20,000 {"vf:a": 1} fit in the 256 KiB body cap: rewriting each would cost 4 x the parse
    document = {"@context": [AS_CONTEXT, {"vf": VALUEFLOWS}], "type": "Create",
                "object": [{"vf:a": 1} for _ in range(20_000)]}
    assert "more than 4096 keys and items" in _timed_refusal(document)


def test_normalise__deeply_nested_scoped_contexts_are_refused() -> None:
    context: dict[str, Any] = {"leaf": "urn:leaf"}
    for depth in range(20):
        context = {f"t{depth}": {"@id": f"urn:t{depth}", "@context": context}}
    assert "too deeply" in _timed_refusal({"@context": context, "type": "Create"})


def test_normalise__prefixes_that_refer_to_each_other_are_refused() -> None:
    document = {"@context": {"a": "b:x", "b": "a:y", "T": "a:T"}, "type": "T"}
    assert "too deeply" in _timed_refusal(document)


def test_normalise__redefining_type_or_id_is_refused() -> None:
    document = {"@context": [AS_CONTEXT, {"type": "https://evil.example/ns#kind"}],
                "type": "Create"}
    assert "keyword alias 'type'" in _timed_refusal(document)


def test_normalise__two_keys_meaning_the_same_property_are_refused() -> None:
    # One would be read by the door and the other by the parser: neither is
    document = {"@context": LISTING_CONTEXT, "type": "Proposal", "purpose": "offer",
                "vf:purpose": "request"}
    assert "both mean 'purpose'" in _timed_refusal(document)


def test_normalise__a_context_url_longer_than_2048_characters_is_refused() -> None:
    assert "too long" in _timed_refusal(
        {"@context": "https://evil.example/" + "a" * 3000, "type": "Create"})


@pytest.mark.parametrize("url", sorted(CONTEXT_FILES))
def test_known_terms__every_vendored_context_compiles(url: str) -> None:
    # The contexts we read from the package (copies of Fedify's) all resolve to absolute IRIs
    terms = known_terms(url)
    assert terms
    assert all(iri.startswith("@") or ":" in iri for iri, _ in terms.values())


_KEYS = st.sampled_from(["@context", "@id", "@type", "@value", "@list", "id", "type", "object",
                         "purpose", "vf:purpose", "vf", "as:name", "proof", "details",
                         f"{VALUEFLOWS}publishes", "x:y", "", "a"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                     st.sampled_from([AS_CONTEXT, VALUEFLOWS, "vf:Proposal", "@id", "@json",
                                      "https://w3id.org/security/v1", "urn:x#"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _JSON, max_size=6))
def test_normalise__any_json_object_is_read_or_refused_with_a_context_error(
        document: dict[str, Any]) -> None:
    # Whatever a peer sends (after the JSON parser), reading it either succeeds or raises
    # the one typed error the inbox maps to 422: never anything that would become a 500
    try:
        reading = normalise(document)
    except ContextError:
        return
    assert isinstance(reading.document, Normalised)
    assert signed_form(reading.document) is document


KEYS = st.sampled_from(["id", "name", "object", "to", "type", "proof", "@context", "@id",
                        "as:name", "https://x.example/p", "vf", "details", "seats", "x:y"])
JSON_TREES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(["Note", "as:Note", ""])),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children,
                                                                      max_size=4),
    max_leaves=20)


@given(JSON_TREES)
def test_compact_only__the_plain_keys_shortcut_decides_as_the_full_checks(tree: Any) -> None:
    # Given any JSON tree of plain, CURIE, IRI and keyword keys (and "type"/"proof")
    # When _compact_only reads it with its set of surely plain keys and with an empty one
    saved = ldread._PLAIN_KEYS
    try:
        ldread._PLAIN_KEYS = frozenset()
        full = ldread._compact_only(tree)
    finally:
        ldread._PLAIN_KEYS = saved
    # Then both decide the same, and the set holds no key the full checks would stop at
    assert ldread._compact_only(tree) == full
    assert not {"type", "proof", "@context"} & ldread._PLAIN_KEYS
    assert all(":" not in key and key[:1] != "@" for key in ldread._PLAIN_KEYS)
