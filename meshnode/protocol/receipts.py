"""Deal receipts: a completed deal attested by both parties and both communities.

A receipt names the deal (its ``Agreement`` id), both parties' actors and their nodes (the
communities' ``Group`` actors), the completion date, the rating each party received and
whether the other side reported them absent (no-show). It carries a Data Integrity *proof
set* (parallel proofs, https://www.w3.org/TR/vc-data-integrity/#proof-sets), every proof an
FEP-8b32 ``eddsa-jcs-2022`` proof (https://w3id.org/fep/8b32) over the receipt without its
proofs: one by each party's key and one by each party's node (one for a deal inside one
community). Whoever holds a receipt can show it to any node, which checks every proof against
the keys the signers' own actor documents list, without trusting the presenter.

A member moving to another community exports their receipts as a ``ReceiptBundle`` signed by
their own key and their node's, naming the account they move to (``movingTo``).

Pure: documents and an explicit time in, values or typed errors out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshnode.protocol.activities import check_url, origin_of, strip_fragment
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.proofs import proof_verification_method, verify_proof
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.vocab import AS_CONTEXT, DATA_INTEGRITY_CONTEXT, MESHNODE_NS

__all__ = [
    "BUNDLE_TYPE",
    "RECEIPT_CONTEXT",
    "RECEIPT_TYPE",
    "Bundle",
    "Receipt",
    "ReceiptParty",
    "build_bundle",
    "build_receipt",
    "parse_bundle",
    "parse_receipt",
    "proof_list",
    "receipt_id",
    "signer_methods",
    "verify_signed",
]

RECEIPT_TYPE = "DealReceipt"
BUNDLE_TYPE = "ReceiptBundle"
RECEIPT_TERMS: dict[str, Any] = {
    "mn": MESHNODE_NS,
    "DealReceipt": "mn:DealReceipt",
    "ReceiptBundle": "mn:ReceiptBundle",
    "deal": {"@id": "mn:deal", "@type": "@id"},
    "completed": "mn:completed",
    "booker": "mn:booker",
    "author": "mn:author",
    "node": {"@id": "mn:node", "@type": "@id"},
    "rating": "mn:rating",
    "noShow": "mn:noShow",
    "receipts": "mn:receipts",
    "exported": "mn:exported",
    "movingTo": {"@id": "mn:movingTo", "@type": "@id"},
}
RECEIPT_CONTEXT: list[Any] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT, RECEIPT_TERMS]
MAX_PROOFS = 4


@dataclass(frozen=True)
class ReceiptParty:
    """One side of a deal: who, from which community, the rating they *received* (1-5) and
    whether the other side reported them absent."""

    actor: str
    node: str
    rating: int
    no_show: bool

    def to_json(self) -> dict[str, Any]:
        """The party as it appears in the receipt."""
        return {"actor": self.actor, "node": self.node, "rating": self.rating,
                "noShow": self.no_show}


@dataclass(frozen=True)
class Receipt:
    """What a receipt says (its proofs are checked by :func:`verify_signed`)."""

    id: str
    deal: str
    completed: datetime
    booker: ReceiptParty
    author: ReceiptParty

    @property
    def cross_community(self) -> bool:
        """True when the two parties belong to different communities (nodes)."""
        return self.booker.node != self.author.node

    @property
    def signers(self) -> frozenset[str]:
        """Actors whose proof the receipt must carry: both parties and both nodes."""
        return frozenset({self.booker.actor, self.author.actor, self.booker.node,
                          self.author.node})

    def side(self, actor: str) -> tuple[ReceiptParty, ReceiptParty] | None:
        """``(this party, the other party)`` for ``actor``, or None if it names them not."""
        if actor == self.booker.actor:
            return self.booker, self.author
        if actor == self.author.actor:
            return self.author, self.booker
        return None


def receipt_id(deal: str) -> str:
    """A receipt's id: the deal's Agreement id with ``#receipt``."""
    return f"{deal}#receipt"


def build_receipt(*, deal: str, completed: datetime, booker: ReceiptParty,
                  author: ReceiptParty) -> dict[str, Any]:
    """The unsigned receipt (each signer adds a proof with ``cosign``)."""
    return {"@context": RECEIPT_CONTEXT, "type": RECEIPT_TYPE, "id": receipt_id(deal),
            "deal": deal, "completed": format_utc(completed),
            "booker": booker.to_json(), "author": author.to_json()}


def _party(value: object, role: str) -> ReceiptParty:
    if not isinstance(value, Mapping):
        raise ValidationError(f"the receipt's {role} is missing", {role: "expected an object"})
    actor = check_url(value.get("actor"), f"{role}.actor")
    node = check_url(value.get("node"), f"{role}.node")
    if origin_of(actor) != origin_of(node):
        raise ValidationError(f"the {role}'s community is not on the {role}'s origin",
                              {role: "actor and node on different origins"})
    rating, no_show = value.get("rating"), value.get("noShow")
    if type(rating) is not int or not 1 <= rating <= 5:
        raise ValidationError(f"the {role}'s rating must be 1-5", {role: "rating 1-5"})
    if not isinstance(no_show, bool):
        raise ValidationError(f"the {role}'s noShow must be true or false",
                              {role: "noShow true or false"})
    return ReceiptParty(actor, node, rating, no_show)


def parse_receipt(document: object) -> Receipt:
    """Read a receipt's fields strictly (ValidationError); proofs are not checked here."""
    if not isinstance(document, Mapping) or document.get("type") != RECEIPT_TYPE:
        raise ValidationError("not a deal receipt", {"type": RECEIPT_TYPE})
    deal = check_url(document.get("deal"), "deal")
    if document.get("id") != receipt_id(deal):
        raise ValidationError("the receipt's id does not name its deal", {"id": "deal#receipt"})
    booker = _party(document.get("booker"), "booker")
    author = _party(document.get("author"), "author")
    if booker.actor == author.actor:
        raise ValidationError("a receipt needs two different parties", {"author": "same"})
    if origin_of(deal) != origin_of(booker.actor):
        raise ValidationError("the deal is not on the booker's origin", {"deal": "origin"})
    completed = parse_utc(document.get("completed"), field="completed")
    return Receipt(id=str(document["id"]), deal=deal, completed=completed, booker=booker,
                   author=author)


def proof_list(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The proofs of a document (one, or a set), each checked to be an object."""
    proof = document.get("proof")
    if proof is None:
        raise ProofError("the document carries no proof")
    proofs = proof if isinstance(proof, list) else [proof]
    if not 0 < len(proofs) <= MAX_PROOFS or not all(isinstance(p, Mapping) for p in proofs):
        raise ProofError("a proof set holds 1-4 proof objects")
    return proofs


def signer_methods(document: Mapping[str, Any], signers: frozenset[str]) -> list[str]:
    """The verification methods of the proof set, exactly one per signer (ProofError when a
    signer's proof is missing, doubled, or a proof is by someone else)."""
    bare = {key: value for key, value in document.items() if key != "proof"}
    methods = [proof_verification_method(bare | {"proof": p}) for p in proof_list(document)]
    controllers = [strip_fragment(method) for method in methods]
    strangers = sorted(set(controllers) - signers)
    if strangers:
        raise ProofError(f"a proof by {strangers[0][:200]}, who is not a party")
    if len(controllers) != len(set(controllers)):
        raise ProofError("two proofs by the same signer")
    missing = sorted(signers - set(controllers))
    if missing:
        raise ProofError(f"the proof of {missing[0][:200]} is missing")
    return methods


def verify_signed(document: Mapping[str, Any], signers: frozenset[str],
                  keys: Mapping[str, bytes]) -> list[str]:
    """Check that every signer proved the document, with ``keys`` (method → raw Ed25519 key,
    each already proven by its controller's own actor document). Returns the methods."""
    methods = signer_methods(document, signers)
    bare = {key: value for key, value in document.items() if key != "proof"}
    for method, proof in zip(methods, proof_list(document), strict=True):
        key = keys.get(method)
        if key is None:
            raise ProofError(f"no key for {method[:200]}")
        verify_proof(bare | {"proof": proof}, public_key=key)
    return methods


@dataclass(frozen=True)
class Bundle:
    """A member's exported receipts (its proofs are checked with :func:`verify_signed`)."""

    actor: str
    node: str
    moving_to: str
    exported: datetime
    receipts: Sequence[Mapping[str, Any]]

    @property
    def signers(self) -> frozenset[str]:
        """The member who exported and their node."""
        return frozenset({self.actor, self.node})


def build_bundle(*, actor: str, node: str, moving_to: str, exported: datetime,
                 receipts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The unsigned export bundle (signed by the member, then by their node)."""
    return {"@context": RECEIPT_CONTEXT, "type": BUNDLE_TYPE, "actor": actor, "node": node,
            "movingTo": moving_to, "exported": format_utc(exported),
            "receipts": list(receipts)}


def parse_bundle(document: object, *, max_receipts: int) -> Bundle:
    """Read a bundle's fields strictly; at most ``max_receipts`` receipts."""
    if not isinstance(document, Mapping) or document.get("type") != BUNDLE_TYPE:
        raise ValidationError("not a receipt bundle", {"type": BUNDLE_TYPE})
    actor = check_url(document.get("actor"), "actor")
    node = check_url(document.get("node"), "node")
    if origin_of(actor) != origin_of(node):
        raise ValidationError("the member's community is not on the member's origin",
                              {"node": "not on the member's origin"})
    moving_to = check_url(document.get("movingTo"), "movingTo")
    receipts = document.get("receipts")
    if not isinstance(receipts, list):
        raise ValidationError("receipts must be a list", {"receipts": "expected a list"})
    if len(receipts) > max_receipts:
        raise ValidationError(f"at most {max_receipts} receipts at a time",
                              {"receipts": f"at most {max_receipts}"})
    if not all(isinstance(item, Mapping) for item in receipts):
        raise ValidationError("each receipt must be an object", {"receipts": "objects"})
    exported = parse_utc(document.get("exported"), field="exported")
    return Bundle(actor=actor, node=node, moving_to=moving_to, exported=exported,
                  receipts=receipts)
