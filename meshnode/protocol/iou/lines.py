"""Trust-line agreements (signed by both nodes) and line updates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.iou.fields import decimal_units
from meshnode.protocol.iou.rates import parse_rate
from meshnode.protocol.iou.vocab import IOU_CONTEXT, LINE_CHANGES
from meshnode.protocol.proofs import create_proof, proof_verification_method, verify_proof

# --- trust-line agreement -------------------------------------------------------------------


@dataclass(frozen=True)
class Currency:
    """A community currency as a trust line names it."""

    uri: str
    symbol: str
    decimals: int

    def as_json(self) -> dict[str, Any]:
        """JSON-LD form."""
        return {"id": self.uri, "symbol": self.symbol, "decimals": self.decimals}


def parse_currency(value: object, field: str) -> Currency:
    """A currency object from a peer (capped and typed)."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be an object")
    uri, symbol, decimals = value.get("id"), value.get("symbol"), value.get("decimals")
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")) or len(uri) > 500:
        raise ValidationError(f"{field}.id must be a URL")
    if not isinstance(symbol, str) or not 0 < len(symbol) <= 16:
        raise ValidationError(f"{field}.symbol must be 1-16 characters")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise ValidationError(f"{field}.decimals must be 0-6")
    return Currency(uri=uri, symbol=symbol, decimals=decimals)


@dataclass(frozen=True)
class LineTerms:
    """What a trust-line agreement says, from the proposer's point of view.

    Limits are in the proposer's minor units; ``rate`` is how many acceptor units one
    proposer unit is worth.
    """

    line_id: str
    object_id: str
    proposer: str
    acceptor: str
    proposer_currency: Currency
    acceptor_currency: Currency
    limit_proposer_owes: int
    limit_acceptor_owes: int
    rate: Decimal
    created: str


def build_agreement(terms: LineTerms) -> dict[str, Any]:
    """The unsigned ``TrustLine`` agreement (each node adds its proof, see :func:`cosign`)."""
    decimals = terms.proposer_currency.decimals
    return {
        "@context": IOU_CONTEXT,
        "id": terms.object_id,
        "type": "TrustLine",
        "line": terms.line_id,
        "proposer": terms.proposer,
        "acceptor": terms.acceptor,
        "proposerCurrency": terms.proposer_currency.as_json(),
        "acceptorCurrency": terms.acceptor_currency.as_json(),
        "limitProposerOwes": format_amount(terms.limit_proposer_owes, decimals=decimals),
        "limitAcceptorOwes": format_amount(terms.limit_acceptor_owes, decimals=decimals),
        "rate": str(terms.rate),
        "published": terms.created,
    }


def parse_agreement(document: object) -> LineTerms:
    """The terms of a ``TrustLine`` document (proofs are checked by :func:`verify_proofs`)."""
    if not isinstance(document, Mapping) or document.get("type") != "TrustLine":
        raise ValidationError("not a TrustLine agreement")
    proposer_currency = parse_currency(document.get("proposerCurrency"), "proposerCurrency")
    decimals = proposer_currency.decimals
    line_id = document.get("line")
    if not isinstance(line_id, str) or not 0 < len(line_id) <= 64 or not line_id.isalnum():
        raise ValidationError("line must be a short identifier")
    strings = {name: document.get(name) for name in ("id", "proposer", "acceptor", "published")}
    for name, value in strings.items():
        if not isinstance(value, str) or not value or len(value) > 500:
            raise ValidationError(f"{name} is required")
    return LineTerms(
        line_id=line_id, object_id=str(strings["id"]), proposer=str(strings["proposer"]),
        acceptor=str(strings["acceptor"]), proposer_currency=proposer_currency,
        acceptor_currency=parse_currency(document.get("acceptorCurrency"), "acceptorCurrency"),
        limit_proposer_owes=decimal_units(document.get("limitProposerOwes"), decimals,
                                   "limitProposerOwes"),
        limit_acceptor_owes=decimal_units(document.get("limitAcceptorOwes"), decimals,
                                   "limitAcceptorOwes"),
        rate=parse_rate(document.get("rate")), created=str(strings["published"]),
    )


def cosign(document: Mapping[str, Any], *, seed: bytes, verification_method: str,
           created: datetime) -> dict[str, Any]:
    """Add one proof to a document's proof set (Data Integrity parallel proofs).

    Every proof in the set signs the document *without* any proof, so the two nodes'
    signatures are independent and their order does not matter.
    """
    bare = {key: value for key, value in document.items() if key != "proof"}
    existing = document.get("proof")
    proofs = [] if existing is None else (list(existing) if isinstance(existing, list)
                                          else [existing])
    signed = create_proof(bare, seed=seed, verification_method=verification_method,
                          created=created)
    return bare | {"proof": [*proofs, signed["proof"]]}


def proof_methods(document: Mapping[str, Any]) -> list[str]:
    """The verificationMethod of every proof of a document (single proof or a set)."""
    proof = document.get("proof")
    proofs = proof if isinstance(proof, list) else [proof]
    bare = {key: value for key, value in document.items() if key != "proof"}
    return [proof_verification_method(bare | {"proof": item}) for item in proofs]


def verify_proofs(document: Mapping[str, Any], keys: Mapping[str, bytes]) -> set[str]:
    """Verify every proof of the set with ``keys`` (method → raw key); return the methods.

    Any proof by an unknown key or that does not verify raises :class:`ProofError`.
    """
    proof = document.get("proof")
    if proof is None:
        raise ProofError("document has no proof")
    proofs = proof if isinstance(proof, list) else [proof]
    if not 0 < len(proofs) <= 4:
        raise ProofError("a proof set has 1-4 proofs")
    bare = {key: value for key, value in document.items() if key != "proof"}
    methods: set[str] = set()
    for item in proofs:
        one = bare | {"proof": item}
        method = proof_verification_method(one)
        key = keys.get(method)
        if key is None:
            raise ProofError(f"unknown signing key {method}")
        verify_proof(one, public_key=key)
        methods.add(method)
    return methods


def build_line_update(*, actor: str, to: str, line_id: str, change: str, when: str,
                      nonce: str, limit_out: str | None = None,
                      limit_in: str | None = None) -> dict[str, Any]:
    """Unsigned ``TrustLineUpdate``: freeze, unfreeze, close, or lowered limits (sender's units:
    ``limit_out`` = what the sender may owe, ``limit_in`` = what it may be owed)."""
    if change not in LINE_CHANGES:
        raise ValueError(change)
    document: dict[str, Any] = {
        "@context": IOU_CONTEXT, "id": f"{actor}/iou/lines/{line_id}/{change}-{nonce}",
        "type": "TrustLineUpdate", "actor": actor, "to": [to], "line": line_id,
        "change": change, "published": when,
    }
    if limit_out is not None:
        document["limitProposerOwes"] = limit_out
    if limit_in is not None:
        document["limitAcceptorOwes"] = limit_in
    return document


LINE_ANSWERS: Final = {"TrustLineOffer": "offer", "TrustLineAccept": "accept",
                       "TrustLineReject": "reject"}


def build_line_answer(kind: str, *, actor: str, to: str, line_id: str, when: str,
                      agreement: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Unsigned ``TrustLineOffer`` / ``TrustLineAccept`` (carrying the signed agreement) or
    ``TrustLineReject`` (without one)."""
    if kind not in LINE_ANSWERS:
        raise ValueError(f"not a trust-line answer type: {kind}")
    document: dict[str, Any] = {
        "@context": IOU_CONTEXT, "id": f"{actor}/iou/lines/{line_id}/{LINE_ANSWERS[kind]}",
        "type": kind, "actor": actor, "to": [to], "line": line_id,
    }
    if agreement is not None:
        document["object"] = dict(agreement)
    document["published"] = when
    return document
