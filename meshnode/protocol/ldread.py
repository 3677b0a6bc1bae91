"""Reading inbound JSON-LD in meshnode's own compact names (issue 15).

A document is JSON-LD: ``{"type": "Proposal"}`` under our ``@context`` means the same as
``{"type": "https://w3id.org/valueflows/ont/vf#Proposal"}`` (what Fedify's ``sendActivity``
writes), as ``{"type": "vf:Proposal"}`` with ``vf`` defined inline. The inbox door and the
parsers read compact names, so a document written with another context is first rewritten
into ours (https://www.w3.org/TR/json-ld11-api/#iri-compaction, restricted to what we read):

- ``needs_normalising`` is the fast path: a document whose ``@context`` is exactly one we
  emit, with only compact keys and types, is read as it is, with no JSON-LD work at all
  (every meshnode peer, Mastodon's Follow and Undo).
- ``normalise`` resolves every key and ``type`` to an absolute IRI with the document's own
  contexts, then compacts it against ours: our term when we have one, the absolute IRI
  otherwise when it was written as a CURIE or IRI, or is one of our names redefined (so a
  redefined ``purpose`` is never read as ours). ``@value``/``@list``/``@set``
  wrappers are unwrapped, a node reference ``{"id": X}`` under an ``@id``-typed term
  becomes ``X``. ``proof`` and ``@json`` values are left untouched. A plain key that is none
  of our names stays as written, whether the document's contexts define it or not (JSON-LD
  would drop an undefined one; keeping it reads compact documents exactly as before).
- Context URLs are never fetched: those vendored in ``protocol/contexts/`` (the copies Fedify
  ships) are read from the package; any other is listed in ``Reading.unknown_contexts``
  ("unknown terms are ignored"); the inbox refuses listings that name one.
- A hostile context cannot make this expensive: at most ``MAX_TERMS`` inline definitions per
  document (counted before any is read), ``MAX_CONTEXT_ENTRIES`` per ``@context``,
  ``MAX_CONTEXTS`` ``@context`` occurrences, scoped contexts ``MAX_CONTEXT_DEPTH`` deep, IRIs
  of ``MAX_IRI`` characters, prefix chains of ``MAX_PREFIX_HOPS``, ``MAX_ENTRIES`` keys and
  list items rewritten (so the work stays within a few times the JSON parse). Past a cap:
  ``ContextError`` (422), nothing read.

Proofs are verified on the document as it was signed: every normalised node is a
``Normalised`` dict whose ``signed`` attribute is the node as received (``signed_form``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from meshnode.protocol.activities import ACTIVITY_CONTEXT, ACTOR_CONTEXT
from meshnode.protocol.deals import DEAL_CONTEXT
from meshnode.protocol.direct_messages import NOTE_CONTEXT as MESSAGE_CONTEXT
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.iou.vocab import IOU_CONTEXT
from meshnode.protocol.ledger import LEDGER_CONTEXT
from meshnode.protocol.notes import NOTE_CONTEXT
from meshnode.protocol.receipts import RECEIPT_CONTEXT
from meshnode.protocol.vocab import AS_CONTEXT, LISTING_CONTEXT

__all__ = ["ContextError", "Normalised", "Reading", "UnknownContextError", "needs_normalising",
           "normalise", "read_document", "signed_form"]

MAX_TERMS: Final = 512
MAX_CONTEXT_ENTRIES: Final = 32
MAX_CONTEXTS: Final = 64
MAX_CONTEXT_DEPTH: Final = 4
MAX_IRI: Final = 2048
MAX_PREFIX_HOPS: Final = 4
MAX_ENTRIES: Final = 4096  # keys and list items rewritten per document (a listing Create: ~80)

# The context documents vendored in protocol/contexts/ (copies of those Fedify 2.3.6 ships).
CONTEXT_FILES: Final[dict[str, str]] = {
    "https://www.w3.org/ns/activitystreams": "activitystreams.json",
    "https://w3id.org/security/v1": "security-v1.json",
    "https://w3id.org/security/data-integrity/v1": "security-data-integrity-v1.json",
    "https://w3id.org/security/data-integrity/v2": "security-data-integrity-v2.json",
    "https://www.w3.org/ns/did/v1": "did-v1.json",
    "https://w3id.org/security/multikey/v1": "security-multikey-v1.json",
    "https://w3id.org/identity/v1": "identity-v1.json",
    "https://gotosocial.org/ns": "gotosocial-ns.json",
    "http://joinmastodon.org/ns": "joinmastodon-ns.json",
    "https://join-lemmy.org/context.json": "lemmy-context.json",
    "https://w3id.org/fep/5711": "fep-5711.json",
    "https://w3id.org/fep/ef61": "fep-ef61.json",
    "https://www.w3.org/ns/cid/v1": "cid-v1.json",
    "https://purl.archive.org/miscellany": "miscellany.json",
    "https://purl.archive.org/socialweb/webfinger": "webfinger.json",
}
# Every @context meshnode emits: a document under one of these is read as it is.
OUR_CONTEXTS: Final[tuple[Any, ...]] = (
    AS_CONTEXT, ACTIVITY_CONTEXT, ACTOR_CONTEXT, LISTING_CONTEXT, DEAL_CONTEXT, LEDGER_CONTEXT,
    IOU_CONTEXT, NOTE_CONTEXT, MESSAGE_CONTEXT, RECEIPT_CONTEXT,
)
# Where our compact names come from, first wins: our inline terms, then the published
# contexts we reference (so as:name -> name, sec:proof -> proof).
_REVERSE_SOURCES: Final = (*OUR_CONTEXTS, [
    "https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v1",
    "https://w3id.org/security/v1", "https://w3id.org/security/multikey/v1"])
_KEYWORD_NAMES: Final = {"@id": "id", "@type": "type"}

Definition = tuple[str, str | None]  # (absolute IRI or keyword, the @type coercion if any)


class ContextError(ValidationError):
    """A document's ``@context`` is malformed or over a cap (refused, nothing read)."""

    code = "bad_context"

    def __init__(self, message: str) -> None:
        super().__init__(message, {"@context": message})


class UnknownContextError(ContextError):
    """A listing names a context URL we do not vendor: we never fetch one to read it."""

    def __init__(self, url: str) -> None:
        super().__init__(f"unknown context {url[:200]!r}: listings must use known contexts "
                         "(terms defined inline or in the ActivityStreams and security contexts)")


class Normalised(dict[str, Any]):
    """A node rewritten in our compact names; ``signed`` is the node as it was received."""

    def __init__(self, items: dict[str, Any], signed: Mapping[str, Any]) -> None:
        super().__init__(items)
        self.signed = signed


@dataclass(frozen=True)
class Reading:
    """A document as we read it, and the context URLs it names that we do not know."""

    document: Mapping[str, Any]
    unknown_contexts: tuple[str, ...] = ()


def signed_form(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """The node as it was received (what its proof covers), for a normalised or raw node."""
    return node.signed if isinstance(node, Normalised) else node


def _iri_like(value: object) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(isinstance(item, str) and ":" in item for item in values)


def _plain_keys() -> frozenset[str]:
    """Keys that are surely neither a CURIE, an IRI, a keyword, ``type`` nor ``proof``: the
    terms our contexts define inline and the ActivityStreams names we read."""
    inline = (key for context in OUR_CONTEXTS for entry in
              (context if isinstance(context, list) else [context])
              if isinstance(entry, dict) for key in entry)
    return frozenset(key for key in (*inline, *_AS_NAMES)
                     if ":" not in key and key[:1] != "@" and key not in ("type", "proof"))


_AS_NAMES: Final = (
    "id", "actor", "object", "target", "to", "cc", "bto", "bcc", "audience", "name", "summary",
    "content", "published", "updated", "url", "attributedTo", "inReplyTo", "source",
    "mediaType", "location", "latitude", "longitude", "startTime", "endTime", "tag",
    "attachment", "href", "icon", "image", "created", "cryptosuite", "proofPurpose",
    "proofValue", "verificationMethod")
_PLAIN_KEYS: Final = _plain_keys()
_CONTAINERS: Final = (dict, list)


def _compact_only(node: object) -> bool:
    """No key written as a CURIE, an IRI or a keyword (but ``@context``), and no type
    written as one, anywhere below ``node`` (``proof`` is never rewritten: not looked at).
    Iterative, with exact type checks: this runs on every inbound document; a key among
    ``_PLAIN_KEYS`` (most of them) is let through by one set lookup (issue 17)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if type(current) is list:
            stack.extend(current)
            continue
        if not isinstance(current, dict):
            continue
        for key, value in current.items():
            if key in _PLAIN_KEYS:
                if type(value) in _CONTAINERS:
                    stack.append(value)
            elif ":" in key or key[:1] == "@":
                if key != "@context":
                    return False
            elif key == "type":
                if _iri_like(value):
                    return False
            elif key != "proof" and type(value) in _CONTAINERS:
                stack.append(value)
    return True


def needs_normalising(document: Mapping[str, Any]) -> bool:
    """False when ``document`` and every object it embeds use exactly one of our contexts and
    only compact keys and types: then it is read as it is, with no JSON-LD processing (one
    walk over its keys, no context is read)."""
    if isinstance(document, Normalised):
        return False
    if document.get("@context") not in OUR_CONTEXTS:
        return True
    obj = document.get("object")
    if isinstance(obj, Mapping) and "@context" in obj and obj["@context"] not in OUR_CONTEXTS:
        return True
    return not _compact_only(document)


# --- contexts -------------------------------------------------------------------------------


def _definition_parts(term: str, value: object) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    if isinstance(value, Mapping):
        raw, coercion = value.get("@id", value.get("@reverse", term)), value.get("@type")
        if isinstance(raw, str) and (coercion is None or isinstance(coercion, str)):
            return raw, coercion
    raise ContextError(f"the definition of {term[:60]!r} is not a string or an object")


def _expand(value: str, local: Mapping[str, Any], terms: Mapping[str, Definition],
            hops: int = 0) -> str:
    """An absolute IRI (or keyword) for a term, CURIE or IRI, per the contexts so far."""
    if len(value) > MAX_IRI:
        raise ContextError("an IRI in the context is too long")
    if hops > MAX_PREFIX_HOPS:
        raise ContextError("the context's prefixes refer to each other too deeply")
    if value.startswith("@"):
        return value
    prefix, colon, rest = value.partition(":")
    if colon and rest.startswith("//"):
        return value
    name = prefix if colon else value
    if name in local and local[name] is not None:
        raw, _ = _definition_parts(name, local[name])
        base = raw if raw == name else _expand(raw, local, terms, hops + 1)
    elif name in terms:
        base = terms[name][0]
    else:
        return value
    return base + rest if colon else base


def _define(terms: dict[str, Definition], context: Mapping[str, Any]) -> None:
    """Add one context object's term definitions to ``terms``."""
    for term, value in context.items():
        if term.startswith("@"):
            continue
        if value is None:
            terms.pop(term, None)
            continue
        raw, coercion = _definition_parts(term, value)
        iri = _expand(raw, context, terms) if raw != term or ":" in term else raw
        if term in ("id", "type") and iri != f"@{term}":
            raise ContextError(f"the context redefines the keyword alias {term!r}")
        if coercion is not None and coercion not in ("@id", "@json", "@vocab"):
            coercion = _expand(coercion, context, terms)
        terms[term] = (iri, coercion)


@cache
def known_terms(url: str) -> Mapping[str, Definition]:
    """The term definitions of a vendored context (read from the package once)."""
    text = Path(__file__).resolve().parent / "contexts" / CONTEXT_FILES[url]
    context = json.loads(text.read_text(encoding="utf-8"))["@context"]
    terms: dict[str, Definition] = {}
    for part in context if isinstance(context, list) else [context]:
        if isinstance(part, str):
            terms.update(known_terms(part))
        else:
            _define(terms, part)
    return terms


def _scoped_terms(definitions: Mapping[str, Any], depth: int) -> int:
    """How many definitions nested (scoped) contexts add; ContextError past the depth cap."""
    count = 0
    for value in definitions.values():
        if isinstance(value, Mapping) and "@context" in value:
            if depth >= MAX_CONTEXT_DEPTH:
                raise ContextError("the context nests scoped contexts too deeply")
            for part in _entries(value["@context"]):
                if isinstance(part, Mapping):
                    count += len(part) + _scoped_terms(part, depth + 1)
    return count


def _entries(context: object) -> list[Any]:
    entries = context if isinstance(context, list) else [context]
    if len(entries) > MAX_CONTEXT_ENTRIES:
        raise ContextError(f"a @context has more than {MAX_CONTEXT_ENTRIES} entries")
    return entries


@dataclass
class _Budget:
    """What one document has spent of the caps, and the unknown context URLs it named."""

    terms: int = 0
    contexts: int = 0
    entries: int = 0
    unknown: list[str] = field(default_factory=list)

    def spend(self, terms: int) -> None:
        self.terms += terms
        if self.terms > MAX_TERMS:
            raise ContextError(f"the document's contexts define more than {MAX_TERMS} terms")

    def visit(self, entries: int) -> None:
        self.entries += entries
        if self.entries > MAX_ENTRIES:
            raise ContextError(f"the document has more than {MAX_ENTRIES} keys and items "
                               "to read in our names")


def _extend(terms: Mapping[str, Definition], context: object,
            budget: _Budget) -> dict[str, Definition]:
    """The active terms once ``context`` (a node's ``@context``) is applied."""
    budget.contexts += 1
    if budget.contexts > MAX_CONTEXTS:
        raise ContextError(f"the document has more than {MAX_CONTEXTS} @context entries")
    entries = _entries(context)
    for entry in entries:  # count first: a 10,000-term context is refused before it is read
        if isinstance(entry, Mapping):
            budget.spend(len(entry))
            budget.spend(_scoped_terms(entry, 1))
    active = dict(terms)
    for entry in entries:
        if entry is None:
            active = {}
        elif isinstance(entry, str):
            if len(entry) > MAX_IRI:
                raise ContextError("a context URL is too long")
            if entry in CONTEXT_FILES:
                active.update(known_terms(entry))
            elif entry not in budget.unknown:
                budget.unknown.append(entry)
        elif isinstance(entry, Mapping):
            _define(active, entry)
        else:
            raise ContextError("a @context entry must be a URL, an object or null")
    return active


# --- compaction -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ours:
    names: Mapping[str, str]  # absolute IRI -> our compact name
    iris: Mapping[str, str]  # each of our compact names -> its absolute IRI
    id_terms: frozenset[str]  # terms whose values are IRIs ("@type": "@id")
    json_terms: frozenset[str]  # our terms holding raw JSON ("@type": "@json")


@cache
def _ours() -> _Ours:
    names: dict[str, str] = {}
    iris: dict[str, str] = {}
    id_terms: set[str] = set()
    json_terms: set[str] = set()
    for context in _REVERSE_SOURCES:
        for term, (iri, coercion) in _extend({}, context, _Budget()).items():
            names.setdefault(iri, term)
            iris.setdefault(term, iri)
            if coercion == "@id":
                id_terms.add(term)
            if coercion == "@json":
                json_terms.add(term)
    for keyword, name in _KEYWORD_NAMES.items():
        names[keyword] = name
    return _Ours(names, iris, frozenset(id_terms), frozenset(json_terms))


def _name(key: str, terms: Mapping[str, Definition]) -> str:
    """Our compact name for a key; else the key as written when it is a plain term that is
    none of our names (undefined, or defined for a vocabulary we do not read); else its
    absolute IRI (a CURIE, or one of our names redefined to mean something else)."""
    if key in terms:
        iri = terms[key][0]
    elif ":" in key or key.startswith("@"):
        iri = _expand(key, {}, terms)
    else:
        return key
    ours = _ours()
    if ours.iris.get(key) == iri:  # one of our names for it (orderedItems, not items)
        return key
    name = ours.names.get(iri)
    if name is not None:
        return name
    return iri if ":" in key or key.startswith("@") or key in ours.iris else key


def _type_name(value: object, terms: Mapping[str, Definition]) -> object:
    if isinstance(value, list):
        return [_type_name(item, terms) for item in value]
    return _name(value, terms) if isinstance(value, str) else value


def _value(value: object, terms: Mapping[str, Definition], budget: _Budget) -> Any:
    if isinstance(value, list):
        budget.visit(len(value))
        return [_value(item, terms, budget) for item in value]
    if not isinstance(value, Mapping):
        return value
    if "@value" in value:
        return value["@value"]
    for wrapper in ("@list", "@set"):
        if wrapper in value:
            return _value(value[wrapper], terms, budget)
    return _node(value, terms, budget)


def _node(node: Mapping[str, Any], terms: Mapping[str, Definition],
          budget: _Budget) -> Normalised:
    budget.visit(len(node))
    if "@context" in node:
        terms = _extend(terms, node["@context"], budget)
    ours = _ours()
    out: dict[str, Any] = {"@context": node["@context"]} if "@context" in node else {}
    for key, value in node.items():
        if key == "@context":
            continue
        name = _name(key, terms)
        if name in out:
            raise ContextError(f"two properties of one object both mean {name[:60]!r}")
        if name == "type":
            out[name] = _type_name(value, terms)
        elif name in ("id", "proof") or name in ours.json_terms:
            out[name] = value
        else:
            read = _value(value, terms, budget)
            if name in ours.id_terms and isinstance(read, Mapping) and set(read) == {"id"}:
                read = read["id"]
            out[name] = read
    return Normalised(out, node)


def normalise(document: Mapping[str, Any]) -> Reading:
    """``document`` rewritten in our compact names (see the module docstring)."""
    budget = _Budget()
    normalised = _node(document, {}, budget)
    return Reading(normalised, tuple(budget.unknown))


def read_document(document: Mapping[str, Any]) -> Reading:
    """The document as we read it: itself on the fast path, else its normalised copy."""
    if not needs_normalising(document):
        return Reading(document)
    return normalise(document)
