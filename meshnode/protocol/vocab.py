"""ActivityStreams, security and marketplace vocabulary (FEP-0837, FEP-8b32, FEP-521a).

Only standard context URLs are referenced; meshnode's own terms are defined inline so a peer
never needs to fetch an unknown context document (REFERENCE.md §3).
"""

from __future__ import annotations

from typing import Any

from meshnode.protocol.canonical import KnownContexts

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v1"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
DID_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

ACTIVITY_JSON = "application/activity+json"
LD_JSON = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'

VALUEFLOWS = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
MESHNODE_NS = "urn:meshnode:ns#"

# Inline term definitions: FEP-0837 (ValueFlows) terms as Fedify's vocabulary reads them
# (https://codeberg.org/fediverse/fep/src/branch/main/fep/0837/fep-0837.md), plus ours.
# ``resourceConformsTo`` is "any URI", so it must expand to an ``@id`` (Fedify's ``Intent``
# refuses a literal there); ``action``, ``purpose`` and ``hasUnit`` are plain strings
# ("transfer", "offer", "one") in FEP-0837 and Fedify, so they stay literals.
MARKETPLACE_TERMS: dict[str, Any] = {
    "vf": VALUEFLOWS,
    "om2": OM2,
    "mn": MESHNODE_NS,
    "Proposal": "vf:Proposal",
    "Intent": "vf:Intent",
    "purpose": "vf:purpose",
    "publishes": "vf:publishes",
    "reciprocal": "vf:reciprocal",
    "unitBased": "vf:unitBased",
    "action": "vf:action",
    "resourceConformsTo": {"@id": "vf:resourceConformsTo", "@type": "@id"},
    "resourceQuantity": "vf:resourceQuantity",
    "availableQuantity": "vf:availableQuantity",
    "minimumQuantity": "vf:minimumQuantity",
    "hasUnit": "om2:hasUnit",
    "hasNumericalValue": "om2:hasNumericalValue",
    "category": "mn:category",
    "status": "mn:status",
    "pricePeriod": "mn:pricePeriod",
    "priceMode": "mn:priceMode",
    "details": {"@id": "mn:details", "@type": "@json"},
}

LISTING_CONTEXT: list[Any] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT, MARKETPLACE_TERMS]
# Our listings' @context canonicalised once (protocol.canonical): a third of a listing's
# bytes, hashed twice per proof (the document and the proof options) and written again each
# time a listing is stored or sent.
KNOWN_CONTEXTS = KnownContexts.of([LISTING_CONTEXT])


def category_uri(category: str) -> str:
    """The ``resourceConformsTo`` IRI naming a listing category."""
    return f"{MESHNODE_NS}category-{category}"
