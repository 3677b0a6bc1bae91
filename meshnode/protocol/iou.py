"""IOUs between communities: trust lines, transfer messages, conversion, routing (pure).

REFERENCE.md §6: each pair of communities keeps an account for the other on its own ledger,
agrees a limit each way and a conversion rate; a payment across communities is prepared on
every hop of a path of such lines, then committed everywhere or released everywhere.

Wire format: ActivityPub-style activities whose extension terms are defined inline in the
``@context`` (REFERENCE §3: a peer must never have to fetch an unknown context URL), each
signed by the acting node's Group actor with an FEP-8b32 ``eddsa-jcs-2022`` proof.

Roles of a transfer on one node: ``origin`` (the payer's node), ``hop`` (an intermediate
node) and ``final`` (the payee's node). Only the final node *decides*; every other node
applies the decision it is sent, so a late or repeated message can never apply a transfer
twice or apply it after it was released (see :data:`TRANSITIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final

from meshnode.protocol.amounts import MAX_AMOUNT_UNITS, format_amount
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.parsing import MAX_SQL_INT, parse_decimal, parse_int
from meshnode.protocol.proofs import create_proof, proof_verification_method, verify_proof
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.vocab import AS_CONTEXT, DATA_INTEGRITY_CONTEXT, MESHNODE_NS

IOU_TERMS: dict[str, Any] = {
    "mn": MESHNODE_NS,
    "TrustLine": "mn:TrustLine",
    "TrustLineOffer": "mn:TrustLineOffer",
    "TrustLineAccept": "mn:TrustLineAccept",
    "TrustLineReject": "mn:TrustLineReject",
    "TrustLineUpdate": "mn:TrustLineUpdate",
    "LineStatement": "mn:LineStatement",
    "IouPrepare": "mn:IouPrepare",
    "IouCommit": "mn:IouCommit",
    "IouReject": "mn:IouReject",
    "IouRelease": "mn:IouRelease",
    "proposer": {"@id": "mn:proposer", "@type": "@id"},
    "acceptor": {"@id": "mn:acceptor", "@type": "@id"},
    "proposerCurrency": "mn:proposerCurrency",
    "acceptorCurrency": "mn:acceptorCurrency",
    "limitProposerOwes": "mn:limitProposerOwes",
    "limitAcceptorOwes": "mn:limitAcceptorOwes",
    "rate": "mn:rate",
    "line": "mn:line",
    "transfer": "mn:transfer",
    "amount": "mn:amount",
    "sourceAmount": "mn:sourceAmount",
    "amounts": {"@id": "mn:amounts", "@container": "@list"},
    "moves": {"@id": "mn:moves", "@container": "@list"},
    "route": {"@id": "mn:route", "@container": "@list", "@type": "@id"},
    "payee": {"@id": "mn:payee", "@type": "@id"},
    "payer": {"@id": "mn:payer", "@type": "@id"},
    "memo": "mn:memo",
    "reason": "mn:reason",
    "expires": "mn:expires",
    "change": "mn:change",
    "balance": "mn:balance",
    "peerBalance": "mn:peerBalance",
    "transfers": "mn:transfers",
    "decimals": "mn:decimals",
    "symbol": "mn:symbol",
    "partOf": "as:partOf",
}
IOU_CONTEXT: list[Any] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT, IOU_TERMS]

LINE_TYPES: Final = ("TrustLineOffer", "TrustLineAccept", "TrustLineReject", "TrustLineUpdate",
                     "LineStatement")
TRANSFER_TYPES: Final = ("IouPrepare", "IouCommit", "IouReject", "IouRelease")
LINE_STATES: Final = ("proposed", "pending", "active", "rejected", "frozen", "closed")
LINE_CHANGES: Final = ("freeze", "unfreeze", "close", "limits")
MAX_HOPS: Final = 4
MAX_REASON = 300
MAX_ROUTE = MAX_HOPS + 1
RATE_MAX_DIGITS = 18


# --- state machine --------------------------------------------------------------------------

TRANSFER_STATES: Final = ("prepared", "committed", "released", "expired")
FINAL_STATES: Final = frozenset({"committed", "released", "expired"})
# (state, event) → next state. Events: "commit" (the decider said yes), "reject" (no),
# "expire" (the decider said the offer arrived or was asked about after its expiry).
# A missing pair is an impossible transition: the message is late or repeated and is ignored.
TRANSITIONS: Final[Mapping[tuple[str, str], str]] = {
    ("prepared", "commit"): "committed",
    ("prepared", "reject"): "released",
    ("prepared", "expire"): "expired",
}


def _check_transitions(table: Mapping[tuple[str, str], str]) -> None:
    """Checked at import: every state is known, final states have no way out."""
    for (state, _event), target in table.items():
        if state not in TRANSFER_STATES or target not in TRANSFER_STATES:
            raise RuntimeError(f"unknown state in transition {state} → {target}")
        if state in FINAL_STATES:
            raise RuntimeError(f"final state {state} has an outgoing transition")
    reachable = {"prepared"} | set(table.values())
    if reachable != set(TRANSFER_STATES):
        raise RuntimeError(f"unreachable states {set(TRANSFER_STATES) - reachable}")


_check_transitions(TRANSITIONS)


def next_state(state: str, event: str) -> str | None:
    """The state after ``event``, or None when the event must be ignored (idempotency)."""
    return TRANSITIONS.get((state, event))


def is_expired_at(expires: str, now: datetime) -> bool:
    """True once ``now`` has reached the transfer's expiry (UTC strings compare in order)."""
    return format_utc(now) >= expires


# --- conversion -----------------------------------------------------------------------------

_CONTEXT = Context(prec=60)


def parse_rate(value: object) -> Decimal:
    """A conversion rate as an exact positive decimal string, e.g. ``"1.25"``."""
    if not isinstance(value, str) or not 0 < len(value) <= 30:
        raise ValidationError("rate must be a decimal string such as \"1.5\"", {"rate": "e.g. 1.5"})
    rate = parse_decimal(value, "rate", max_digits=9, places=9)
    if rate <= 0 or len(rate.as_tuple().digits) > RATE_MAX_DIGITS:
        raise ValidationError("rate must be a positive decimal", {"rate": "positive, e.g. 1.5"})
    if value.strip() != value or "e" in value.lower():
        raise ValidationError("rate must be written as a plain decimal", {"rate": "e.g. 1.5"})
    return rate


def convert(units: int, *, rate: Decimal, from_decimals: int, to_decimals: int) -> int:
    """Minor units of one currency → the other: ``value × rate``, rounded half-even.

    Exact Decimal arithmetic (never float), rounded once to the target currency's decimals
    (REFERENCE §6: Credit Commons rounds converted amounts half-even).
    """
    value = _CONTEXT.multiply(Decimal(units), rate)
    scaled = _CONTEXT.multiply(value, Decimal(10) ** (to_decimals - from_decimals))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def convert_back(units: int, *, rate: Decimal, from_decimals: int, to_decimals: int) -> int:
    """The inverse direction of a line: ``value ÷ rate``, rounded half-even."""
    value = _CONTEXT.divide(Decimal(units), rate)
    scaled = _CONTEXT.multiply(value, Decimal(10) ** (to_decimals - from_decimals))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class LineView:
    """One node's view of a trust line: limits in its own units and how to convert."""

    line_id: str
    peer: str
    rate: Decimal
    is_proposer: bool
    local_decimals: int
    peer_decimals: int

    def to_peer(self, units: int) -> int:
        """Our minor units → the peer's minor units."""
        if self.is_proposer:
            return convert(units, rate=self.rate, from_decimals=self.local_decimals,
                           to_decimals=self.peer_decimals)
        return convert_back(units, rate=self.rate, from_decimals=self.local_decimals,
                            to_decimals=self.peer_decimals)

    def from_peer(self, units: int) -> int:
        """The peer's minor units → ours."""
        if self.is_proposer:
            return convert_back(units, rate=self.rate, from_decimals=self.peer_decimals,
                                to_decimals=self.local_decimals)
        return convert(units, rate=self.rate, from_decimals=self.peer_decimals,
                       to_decimals=self.local_decimals)

    def peer_ratio(self) -> Decimal:
        """Value of one of our minor units in the peer's minor units (no rounding)."""
        scale = Decimal(10) ** (self.peer_decimals - self.local_decimals)
        ratio = self.rate if self.is_proposer else _CONTEXT.divide(Decimal(1), self.rate)
        return _CONTEXT.multiply(ratio, scale)

    def matches(self, ours: int, theirs: int) -> bool:
        """True when ``ours`` (our units) and ``theirs`` (the peer's) are the same value at
        the line's rate, rounded half-even on either side: ``theirs`` is ``ours`` converted
        (the sender rounds forward) or ``ours`` is ``theirs`` converted back (a payee-stated
        amount: the upstream side rounds). Either way the error is under one minor unit."""
        return self.to_peer(ours) == theirs or self.from_peer(theirs) == ours


def payee_amounts(views: Sequence[LineView], payee_units: int) -> tuple[int, ...]:
    """Every node's amount along a route so that the payee receives exactly ``payee_units``.

    ``views`` are the route's lines, each seen from its upstream node. Starting from the
    payee, each upstream amount is the downstream amount converted back at that line's rate,
    rounded half-even to the upstream currency's decimals (the payee's node never rounds;
    the payer's debit is the last result). Raises ValidationError when a hop rounds to zero.
    """
    amounts = [payee_units]
    for view in reversed(views):
        upstream = view.from_peer(amounts[0])
        if upstream <= 0:
            raise ValidationError("amount too small once converted", {"amount": "too small"})
        amounts.insert(0, upstream)
    return tuple(amounts)


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


def _units(value: object, decimals: int, field: str) -> int:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a decimal string")
    amount = parse_decimal(value, field, max_digits=13, places=decimals)
    units = amount.scaleb(decimals)
    if units < 0 or units > MAX_AMOUNT_UNITS:
        raise ValidationError(f"{field} must be a non-negative amount with {decimals} decimals")
    return int(units)


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
        limit_proposer_owes=_units(document.get("limitProposerOwes"), decimals,
                                   "limitProposerOwes"),
        limit_acceptor_owes=_units(document.get("limitAcceptorOwes"), decimals,
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


# --- transfer messages ----------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareTerms:
    """An offer to move value over one hop of a route (the ``IouPrepare`` activity)."""

    transfer_id: str
    line_id: str
    amount: int
    source_amount: int
    route: tuple[str, ...]
    payer: str
    payee: str
    memo: str
    expires: str
    # Payee-denominated transfers: every node's amount along the route, in that node's minor
    # units, fixed by the payer's node (see :func:`payee_amounts`); empty otherwise.
    amounts: tuple[int, ...] = ()


def transfer_activity_id(actor: str, transfer_id: str, kind: str, suffix: str = "") -> str:
    """Deterministic activity id: a resend of the same step reuses it (outbox dedupe)."""
    return f"{actor}/iou/transfers/{transfer_id}/{kind.lower()}{suffix}"


def build_prepare(terms: PrepareTerms, *, actor: str, to: str, when: str) -> dict[str, Any]:
    """Unsigned ``IouPrepare``: amounts in minor units (receiver's and sender's currency)."""
    return {
        "@context": IOU_CONTEXT,
        "id": transfer_activity_id(actor, terms.transfer_id, "prepare"),
        "type": "IouPrepare",
        "actor": actor,
        "to": [to],
        "transfer": terms.transfer_id,
        "line": terms.line_id,
        "amount": str(terms.amount),
        "sourceAmount": str(terms.source_amount),
        "route": list(terms.route),
        "payer": terms.payer,
        "payee": terms.payee,
        "memo": terms.memo,
        "expires": terms.expires,
        "published": when,
    } | ({"amounts": [str(units) for units in terms.amounts]} if terms.amounts else {})


def build_answer(kind: str, *, actor: str, to: str, transfer_id: str, line_id: str,
                 when: str, reason: str = "", suffix: str = "") -> dict[str, Any]:
    """Unsigned ``IouCommit`` / ``IouReject`` / ``IouRelease`` for a transfer."""
    if kind not in ("IouCommit", "IouReject", "IouRelease"):
        raise ValueError(f"not an answer type: {kind}")
    document: dict[str, Any] = {
        "@context": IOU_CONTEXT,
        "id": transfer_activity_id(actor, transfer_id, kind.removeprefix("Iou"), suffix),
        "type": kind, "actor": actor, "to": [to], "transfer": transfer_id, "line": line_id,
        "published": when,
    }
    if reason:
        document["reason"] = reason[:MAX_REASON]
    return document


def _text(act: Mapping[str, Any], name: str, cap: int = 500, *, empty: bool = False) -> str:
    value = act.get(name)
    if not isinstance(value, str) or len(value) > cap or (not value and not empty):
        raise ValidationError(f"{name} must be text of at most {cap} characters")
    return value


def _ident(act: Mapping[str, Any], name: str) -> str:
    value = _text(act, name, 64)
    if not value.isalnum():
        raise ValidationError(f"{name} must be an identifier")
    return value


def _positive(act: Mapping[str, Any], name: str) -> int:
    value = act.get(name)
    if not isinstance(value, str):  # minor units travel as strings of ASCII digits
        raise ValidationError(f"{name} must be whole minor units")
    return parse_int(value, name, low=1, high=MAX_AMOUNT_UNITS)


def parse_prepare(act: Mapping[str, Any]) -> PrepareTerms:
    """Check and read an ``IouPrepare``."""
    route = act.get("route")
    if (not isinstance(route, Sequence) or isinstance(route, str)
            or not 2 <= len(route) <= MAX_ROUTE
            or not all(isinstance(hop, str) and 0 < len(hop) <= 500 for hop in route)
            or len(set(route)) != len(route)):
        raise ValidationError("route must list 2-5 distinct node actors")
    amounts: tuple[int, ...] = ()
    if "amounts" in act:
        listed = act.get("amounts")
        if not isinstance(listed, list) or len(listed) != len(route):
            raise ValidationError("amounts must give one amount per node of the route")
        amounts = tuple(_positive({"amounts": item}, "amounts") for item in listed)
    return PrepareTerms(
        transfer_id=_ident(act, "transfer"), line_id=_ident(act, "line"),
        amount=_positive(act, "amount"), source_amount=_positive(act, "sourceAmount"),
        route=tuple(route), payer=_text(act, "payer"), payee=_text(act, "payee"),
        memo=_text(act, "memo", 500, empty=True), expires=_text(act, "expires", 40),
        amounts=amounts,
    )


@dataclass(frozen=True)
class Answer:
    """A parsed commit / reject / release."""

    kind: str
    transfer_id: str
    line_id: str
    reason: str


def parse_answer(act: Mapping[str, Any]) -> Answer:
    """Check and read an ``IouCommit`` / ``IouReject`` / ``IouRelease``."""
    reason = act.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ValidationError("reason must be short text")
    return Answer(kind=str(act.get("type")), transfer_id=_ident(act, "transfer"),
                  line_id=_ident(act, "line"), reason=reason)


def next_hop(route: Sequence[str], me: str) -> str | None:
    """The node after ``me`` on the route (None when ``me`` is the last, the payee's node)."""
    index = list(route).index(me)
    return route[index + 1] if index + 1 < len(route) else None


def previous_hop(route: Sequence[str], me: str) -> str | None:
    """The node before ``me`` on the route (None for the payer's node)."""
    index = list(route).index(me)
    return route[index - 1] if index else None


# --- line updates and statements ------------------------------------------------------------


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


@dataclass(frozen=True)
class Statement:
    """A node's view of a line: its account balance (own units), the peer's (peer units)."""

    line_id: str
    balance: int
    peer_balance: int
    transfers: tuple[str, ...]
    # The newest moves as the sender recorded them: (transfer, its change, the peer's change).
    moves: tuple[tuple[str, int, int], ...] = ()


MAX_STATEMENT_MOVES = 100


def build_statement(statement: Statement, *, actor: str, to: str, when: str,
                    nonce: str) -> dict[str, Any]:
    """Unsigned ``LineStatement`` for reconciliation."""
    return {
        "@context": IOU_CONTEXT, "id": f"{actor}/iou/lines/{statement.line_id}/stmt-{nonce}",
        "type": "LineStatement", "actor": actor, "to": [to], "line": statement.line_id,
        "balance": str(statement.balance), "peerBalance": str(statement.peer_balance),
        "transfers": list(statement.transfers), "published": when,
    } | ({"moves": [[t, str(local), str(peer)] for t, local, peer in statement.moves]}
         if statement.moves else {})


def _signed_int(act: Mapping[str, Any], name: str) -> int:
    value = act.get(name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be an integer string")
    return parse_int(value, name, low=-MAX_SQL_INT, high=MAX_SQL_INT)


def parse_statement(act: Mapping[str, Any]) -> Statement:
    """Check and read a ``LineStatement``."""
    transfers = act.get("transfers", [])
    if not isinstance(transfers, list) or len(transfers) > 100 or not all(
            isinstance(t, str) and t.isalnum() and len(t) <= 64 for t in transfers):
        raise ValidationError("transfers must list at most 100 transfer ids")
    listed = act.get("moves", [])
    if not isinstance(listed, list) or len(listed) > MAX_STATEMENT_MOVES:
        raise ValidationError(f"moves must list at most {MAX_STATEMENT_MOVES} moves")
    moves: list[tuple[str, int, int]] = []
    for item in listed:
        if not isinstance(item, list) or len(item) != 3:
            raise ValidationError("a move is [transfer, change, peer change]")
        fields = {"transfer": item[0], "local": item[1], "peer": item[2]}
        moves.append((_ident(fields, "transfer"), _signed_int(fields, "local"),
                      _signed_int(fields, "peer")))
    return Statement(line_id=_ident(act, "line"), balance=_signed_int(act, "balance"),
                     peer_balance=_signed_int(act, "peerBalance"), transfers=tuple(transfers),
                     moves=tuple(moves))


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of comparing our view of a line with the peer's signed statement."""

    status: str
    detail: str
    only_ours: tuple[str, ...] = ()
    only_theirs: tuple[str, ...] = ()
    # Transfers both sides list with amounts that do not mirror:
    # (transfer, our change, our view of theirs, their change, their view of ours).
    differing: tuple[tuple[str, int, int, int, int], ...] = ()


def reconcile(ours: Statement, theirs: Statement, *, in_flight: int) -> Reconciliation:
    """Mirror check: our balance is their ``peerBalance`` and vice versa.

    With transfers still prepared on this line a difference may be a commit in transit:
    reported as ``in_flight`` rather than a mismatch.
    """
    only_ours = tuple(sorted(set(ours.transfers) - set(theirs.transfers)))
    only_theirs = tuple(sorted(set(theirs.transfers) - set(ours.transfers)))
    their_moves = {transfer: (local, peer) for transfer, local, peer in theirs.moves}
    differing = tuple(
        (transfer, local, peer, *their_moves[transfer]) for transfer, local, peer in ours.moves
        if transfer in their_moves and (local, peer) != their_moves[transfer][::-1])
    if (ours.balance == theirs.peer_balance and ours.peer_balance == theirs.balance
            and not differing):
        return Reconciliation("match", "both views agree")
    detail = (f"our balance {ours.balance} vs their view {theirs.peer_balance}; their balance"
              f" {theirs.balance} vs our view {ours.peer_balance}")
    if differing:
        detail += f"; {len(differing)} transfer(s) recorded with different amounts"
    status = "in_flight" if in_flight and not differing else "mismatch"
    return Reconciliation(status, detail, only_ours, only_theirs, differing)


# --- path finding ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """A usable direction of a trust line: ``source`` can send ``capacity`` of its own minor
    units to ``target``; ``ratio`` = target units per source unit (for ranking only)."""

    source: str
    target: str
    capacity: int
    ratio: Decimal
    # The line seen from ``source`` (exact rate and decimals), when its node publishes it:
    # needed to state an amount in the payee's currency (:func:`choose_route_for_payee`).
    view: LineView | None = None


@dataclass(frozen=True)
class Route:
    """A path and the most the payer can send along it, in the payer's minor units."""

    nodes: tuple[str, ...]
    capacity: int

    @property
    def hops(self) -> int:
        """Number of lines crossed."""
        return len(self.nodes) - 1


def _path_capacity(path: Sequence[Edge]) -> int:
    capacity: Decimal | None = None
    factor = Decimal(1)  # target units at this hop per payer unit
    for edge in path:
        in_payer_units = _CONTEXT.divide(Decimal(edge.capacity), factor)
        capacity = in_payer_units if capacity is None else min(capacity, in_payer_units)
        factor = _CONTEXT.multiply(factor, edge.ratio)
    return int((capacity or Decimal(0)).to_integral_value(rounding="ROUND_FLOOR"))


def find_routes(edges: Sequence[Edge], source: str, target: str, *,
                max_hops: int = MAX_HOPS) -> list[Route]:
    """Every simple path ``source`` → ``target`` of at most ``max_hops`` lines, best first:
    most capacity (in the payer's units), then fewest hops, then by name (deterministic)."""
    outgoing: dict[str, list[Edge]] = {}
    for edge in edges:
        if edge.capacity > 0 and edge.source != edge.target:
            outgoing.setdefault(edge.source, []).append(edge)
    routes: list[Route] = []

    def walk(node: str, path: list[Edge], seen: set[str]) -> None:
        if node == target and path:
            nodes = (source, *(edge.target for edge in path))
            routes.append(Route(nodes=nodes, capacity=_path_capacity(path)))
            return
        if len(path) >= max_hops:
            return
        for edge in outgoing.get(node, []):
            if edge.target not in seen:
                walk(edge.target, [*path, edge], seen | {edge.target})

    walk(source, [], {source})
    routes.sort(key=lambda route: (-route.capacity, route.hops, route.nodes))
    return routes


def choose_route(edges: Sequence[Edge], source: str, target: str, amount: int) -> Route | None:
    """The best route with room for ``amount`` (payer units), or None."""
    for route in find_routes(edges, source, target):
        if route.capacity >= amount:
            return route
    return None


def choose_route_for_payee(edges: Sequence[Edge], source: str, target: str,
                           payee_units: int) -> tuple[Route, tuple[int, ...]] | None:
    """The best route on which the payee can receive exactly ``payee_units`` (their units),
    with every node's amount (:func:`payee_amounts`); None when no route has the room."""
    best: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        known = best.get((edge.source, edge.target))
        if edge.view is not None and (known is None or edge.capacity > known.capacity):
            best[(edge.source, edge.target)] = edge
    for route in find_routes(list(best.values()), source, target):
        hops = [best[(a, b)] for a, b in zip(route.nodes, route.nodes[1:], strict=False)]
        try:
            amounts = payee_amounts([edge.view for edge in hops if edge.view], payee_units)
        except ValidationError:
            continue
        if all(amounts[index] <= edge.capacity for index, edge in enumerate(hops)):
            return route, amounts
    return None
