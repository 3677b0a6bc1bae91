"""Mutual-credit ledger arithmetic, signed documents and the hash-chained journal (pure).

REFERENCE.md §6: every transaction moves integer minor units from a payer account to a payee
account, so the balances always sum to zero; each account has a lower and an upper limit,
checked against the balance *including* what pending holds have reserved.

Documents are JSON-LD with inline terms (ValueFlows ``EconomicEvent`` for a transfer, an
ActivityStreams ``Offer`` for a payment request, ``Accept``/``Reject`` for the payer's
decision), signed by the acting member with FEP-8b32 eddsa-jcs-2022 (``proofs.create_proof``).

Journal entry hash = SHA-256(JCS({"prev": previous hash, "entry": fields, "document": signed
document})); the first entry's previous hash is :data:`GENESIS_HASH`. :func:`verify_chain`
recomputes every hash and link and names the entries that were altered, removed or reordered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from meshnode.protocol.amounts import MAX_AMOUNT_UNITS, format_amount
from meshnode.protocol.canonical import canonicalize
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.proofs import proof_verification_method, verify_proof
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.protocol.vocab import AS_CONTEXT, DATA_INTEGRITY_CONTEXT, MESHNODE_NS, VALUEFLOWS

GENESIS_HASH = "0" * 64
MEMO_MAX = 500
EntryKind = Literal["payment", "request", "reversal", "admin"]
ENTRY_KINDS: tuple[str, ...] = ("payment", "request", "reversal", "admin")

LEDGER_TERMS: dict[str, Any] = {
    "vf": VALUEFLOWS,
    "om2": "http://www.ontology-of-units-of-measure.org/resource/om-2/",
    "mn": MESHNODE_NS,
    "EconomicEvent": "vf:EconomicEvent",
    "action": "vf:action",
    "provider": {"@id": "vf:provider", "@type": "@id"},
    "receiver": {"@id": "vf:receiver", "@type": "@id"},
    "resourceConformsTo": {"@id": "vf:resourceConformsTo", "@type": "@id"},
    "resourceQuantity": "vf:resourceQuantity",
    "hasPointInTime": "vf:hasPointInTime",
    "note": "vf:note",
    "hasUnit": "om2:hasUnit",
    "hasNumericalValue": "om2:hasNumericalValue",
    "entryKind": "mn:entryKind",
    "forListing": {"@id": "mn:forListing", "@type": "@id"},
    "reverses": {"@id": "mn:reverses", "@type": "@id"},
    "enteredBy": {"@id": "mn:enteredBy", "@type": "@id"},
}
LEDGER_CONTEXT: list[Any] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT, LEDGER_TERMS]


# --- limits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountPosition:
    """An account's balance, limits (None = unlimited) and what pending holds reserve."""

    name: str
    balance: int
    min_balance: int | None
    max_balance: int | None
    held_debit: int = 0
    held_credit: int = 0

    @property
    def available_to_spend(self) -> int | None:
        """Units this account can still pay out (None when it has no lower limit)."""
        if self.min_balance is None:
            return None
        return max(0, self.balance - self.held_debit - self.min_balance)

    @property
    def available_to_receive(self) -> int | None:
        """Units this account can still receive (None when it has no upper limit)."""
        if self.max_balance is None:
            return None
        return max(0, self.max_balance - self.balance - self.held_credit)


@dataclass(frozen=True)
class LimitBreach:
    """Why a transfer does not fit: whose limit, which side, and how much room is left."""

    account: str
    side: Literal["spend", "receive"]
    available: int


def check_transfer(
    payer: AccountPosition, payee: AccountPosition, amount: int
) -> LimitBreach | None:
    """The first limit ``amount`` would breach (payer's lower, then payee's upper), or None."""
    spend = payer.available_to_spend
    if spend is not None and amount > spend:
        return LimitBreach(account=payer.name, side="spend", available=spend)
    receive = payee.available_to_receive
    if receive is not None and amount > receive:
        return LimitBreach(account=payee.name, side="receive", available=receive)
    return None


def parse_memo(value: object) -> str:
    """A memo: optional text, control characters removed, at most :data:`MEMO_MAX` chars."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("memo must be text", {"memo": "must be a string"})
    memo = clean_text(value)
    if len(memo) > MEMO_MAX:
        raise ValidationError("memo too long",
            {"memo": Text("at most %(max)s characters", max=MEMO_MAX)})
    return memo


# --- documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurrencyTerms:
    """The currency as named in documents: its IRI, symbol and decimal places."""

    uri: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class TransferTerms:
    """What a transfer says, independent of who signs it and where it is stored."""

    object_id: str
    kind: str
    payer_uri: str
    payee_uri: str
    amount: int
    memo: str
    created: datetime
    listing_uri: str | None = None
    reverses_uri: str | None = None
    entered_by_uri: str | None = None


def quantity(amount: int, currency: CurrencyTerms) -> dict[str, str]:
    """A ValueFlows ``resourceQuantity`` for an amount of the currency."""
    return {
        "hasUnit": currency.symbol,
        "hasNumericalValue": format_amount(amount, decimals=currency.decimals),
    }


def build_event(terms: TransferTerms, currency: CurrencyTerms) -> dict[str, Any]:
    """The unsigned ValueFlows ``EconomicEvent`` for a transfer (sign it with create_proof)."""
    document: dict[str, Any] = {
        "@context": LEDGER_CONTEXT,
        "id": terms.object_id,
        "type": "EconomicEvent",
        "action": "transfer",
        "entryKind": terms.kind,
        "provider": terms.payer_uri,
        "receiver": terms.payee_uri,
        "resourceConformsTo": currency.uri,
        "resourceQuantity": quantity(terms.amount, currency),
        "hasPointInTime": format_utc(terms.created),
        "note": terms.memo,
    }
    optional = {
        "forListing": terms.listing_uri,
        "reverses": terms.reverses_uri,
        "enteredBy": terms.entered_by_uri,
    }
    document.update({key: value for key, value in optional.items() if value is not None})
    return document


def build_request(
    terms: TransferTerms, currency: CurrencyTerms, *, request_uri: str, expires: datetime
) -> dict[str, Any]:
    """The unsigned payment request: the payee ``Offer``s the payer a transfer to approve."""
    event = build_event(terms, currency)
    event.pop("@context")
    return {
        "@context": LEDGER_CONTEXT,
        "id": request_uri,
        "type": "Offer",
        "actor": terms.payee_uri,
        "to": [terms.payer_uri],
        "object": event,
        "published": format_utc(terms.created),
        "endTime": format_utc(expires),
    }


def build_decision(
    signed_request: Mapping[str, Any], *, decision_uri: str, actor_uri: str, approve: bool,
    when: datetime,
) -> dict[str, Any]:
    """The payer's unsigned ``Accept`` or ``Reject`` embedding the payee-signed request."""
    return {
        "@context": LEDGER_CONTEXT,
        "id": decision_uri,
        "type": "Accept" if approve else "Reject",
        "actor": actor_uri,
        "object": dict(signed_request),
        "published": format_utc(when),
    }


def document_event(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``EconomicEvent`` a journal document records (inside an Accept → Offer for bills)."""
    if document.get("type") == "Accept":
        offer = document.get("object")
        event = offer.get("object") if isinstance(offer, Mapping) else None
    else:
        event = document
    if not isinstance(event, Mapping) or event.get("type") != "EconomicEvent":
        raise ValidationError("document records no EconomicEvent")
    return event


# --- journal --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryFields:
    """The columns of a journal entry that its hash covers (everything but seq and hashes)."""

    id: str
    kind: str
    payer: str
    payee: str
    amount: int
    memo: str
    listing_id: str | None
    reverses: str | None
    request_id: str | None
    signer: str
    created_at: str

    def as_json(self) -> dict[str, Any]:
        """The fields as the JSON object that is hashed."""
        return {
            "id": self.id, "kind": self.kind, "payer": self.payer, "payee": self.payee,
            "amount": self.amount, "memo": self.memo, "listing": self.listing_id,
            "reverses": self.reverses, "request": self.request_id, "signer": self.signer,
            "created": self.created_at,
        }


class Movement(NamedTuple):
    """What one journal entry moved, and when: all the wallet's balance chart draws (read
    without the entry's signed document, issue 17)."""

    seq: int
    payer: str
    payee: str
    amount: int
    created_at: str


@dataclass(frozen=True)
class JournalEntry:
    """One stored journal row: its position, fields, signed document and chain hashes."""

    seq: int
    fields: EntryFields
    document: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainHead:
    """The recorded end of the chain (moved with every append)."""

    seq: int
    hash: str


def entry_hash(prev_hash: str, fields: EntryFields, document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over JCS of the previous hash, the entry fields and the signed document."""
    return chain_hash(prev_hash, canonicalize(fields.as_json()), canonicalize(dict(document)))


def chain_hash(prev_hash: str, fields_jcs: bytes, document_jcs: bytes) -> str:
    """:func:`entry_hash` from already canonical parts (so the write lock only hashes).

    JCS sorts object keys and serialises nested values on their own, so splicing gives the
    same bytes as ``canonicalize({"prev": …, "entry": …, "document": …})``.
    """
    payload = b"".join((
        b'{"document":', document_jcs, b',"entry":', fields_jcs, b',"prev":',
        canonicalize(prev_hash), b"}",
    ))
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class PreparedEntry:
    """An entry to append, canonicalised ahead of time (outside the write lock)."""

    fields: EntryFields
    document: Mapping[str, Any]
    fields_jcs: bytes
    document_jcs: bytes

    def hash_after(self, prev_hash: str) -> str:
        """This entry's hash when chained after ``prev_hash``."""
        return chain_hash(prev_hash, self.fields_jcs, self.document_jcs)


def prepare_entry(fields: EntryFields, document: Mapping[str, Any]) -> PreparedEntry:
    """Canonicalise an entry's fields and signed document once."""
    return PreparedEntry(fields=fields, document=document,
                         fields_jcs=canonicalize(fields.as_json()),
                         document_jcs=canonicalize(dict(document)))


ProblemKind = Literal["altered", "removed", "reordered", "bad_signature", "mismatch"]


@dataclass(frozen=True)
class ChainProblem:
    """One thing wrong with the journal, pinned to the entry (seq) where it shows."""

    seq: int
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class ChainReport:
    """The verdict of :func:`verify_chain`: ``ok`` only when no problem was found."""

    entries: int
    problems: tuple[ChainProblem, ...] = field(default_factory=tuple)
    last_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        """True when every hash, link, signature and the head check out."""
        return not self.problems

    def describe(self) -> str:
        """A human-readable multi-line report."""
        if self.ok:
            return f"journal intact: {self.entries} entries, head {self.last_hash[:16]}…"
        lines = [f"journal NOT intact: {len(self.problems)} problem(s) in {self.entries} entries"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


def _link_problem(
    entries: Sequence[JournalEntry], index: int, positions: Mapping[str, int]
) -> ChainProblem:
    entry = entries[index]
    previous_seq = entries[index - 1].seq if index else 0
    chained_to = positions.get(entry.prev_hash)
    if chained_to is not None and chained_to != index - 1:
        return ChainProblem(
            entry.seq, "reordered",
            f"it was appended after entry {entries[chained_to].seq}, but now follows entry "
            f"{previous_seq or 'none (start of journal)'}",
        )
    if entry.seq > previous_seq + 1:
        return ChainProblem(
            entry.seq, "removed",
            f"entries {previous_seq + 1}..{entry.seq - 1} are missing before it",
        )
    return ChainProblem(
        previous_seq or entry.seq, "altered",
        f"entry {entry.seq} was chained to a different entry {previous_seq}: it was rewritten"
        " (and re-hashed) or replaced",
    )


def _content_problems(
    entry: JournalEntry, decimals: int, keys: Mapping[str, bytes] | None
) -> list[ChainProblem]:
    if entry_hash(entry.prev_hash, entry.fields, entry.document) != entry.hash:
        return [ChainProblem(entry.seq, "altered", "its content no longer matches its hash")]
    problems = _document_mismatch(entry, decimals)
    if keys is not None:
        problems.extend(_signature_problems(entry, keys))
    return problems


def _document_mismatch(entry: JournalEntry, decimals: int) -> list[ChainProblem]:
    try:
        event = document_event(entry.document)
    except ValidationError as exc:
        return [ChainProblem(entry.seq, "mismatch", str(exc))]
    value = event.get("resourceQuantity", {}).get("hasNumericalValue")
    if value != format_amount(entry.fields.amount, decimals=decimals):
        return [ChainProblem(
            entry.seq, "mismatch", f"the signed document says {value!r}, the entry"
            f" {format_amount(entry.fields.amount, decimals=decimals)}",
        )]
    return []


def _signed_parts(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    parts = [document]
    if document.get("type") == "Accept" and isinstance(document.get("object"), Mapping):
        parts.append(document["object"])
    return parts


def _signature_problems(entry: JournalEntry, keys: Mapping[str, bytes]) -> list[ChainProblem]:
    problems: list[ChainProblem] = []
    for part in _signed_parts(entry.document):
        try:
            verify_proof(part, public_key=_key_for(part, keys))
        except ProofError as exc:
            problems.append(ChainProblem(entry.seq, "bad_signature", str(exc)))
    return problems


def _key_for(document: Mapping[str, Any], keys: Mapping[str, bytes]) -> bytes:
    method = proof_verification_method(document)
    key = keys.get(method)
    if key is None:
        raise ProofError(f"unknown signing key {method}")
    return key


def _head_problems(entries: Sequence[JournalEntry], head: ChainHead | None) -> list[ChainProblem]:
    if head is None:
        return []
    last_seq = entries[-1].seq if entries else 0
    last_hash = entries[-1].hash if entries else GENESIS_HASH
    if head.seq > last_seq:
        return [ChainProblem(
            head.seq, "removed", f"the journal ends at entry {last_seq} but {head.seq} were"
            " recorded: the last entries were removed",
        )]
    if head.seq != last_seq or head.hash != last_hash:
        return [ChainProblem(
            last_seq, "altered", f"the recorded head is entry {head.seq} ({head.hash[:16]}…),"
            " not this one",
        )]
    return []


def verify_chain(
    entries: Sequence[JournalEntry],
    *,
    decimals: int,
    keys: Mapping[str, bytes] | None = None,
    head: ChainHead | None = None,
) -> ChainReport:
    """Check every entry's hash and link (and, given ``keys``, its signatures) in seq order.

    ``keys`` maps a proof's verificationMethod to its raw Ed25519 public key; ``head`` is the
    separately recorded end of the chain, which catches removal of the last entries.
    """
    positions = {entry.hash: index for index, entry in enumerate(entries)}
    problems: list[ChainProblem] = []
    expected_prev = GENESIS_HASH
    for index, entry in enumerate(entries):
        problems.extend(_content_problems(entry, decimals, keys))
        if entry.prev_hash != expected_prev:
            problems.append(_link_problem(entries, index, positions))
        expected_prev = entry.hash
    problems.extend(_head_problems(entries, head))
    return ChainReport(entries=len(entries), problems=tuple(problems), last_hash=expected_prev)


def balances_from_entries(entries: Iterable[JournalEntry]) -> dict[str, int]:
    """Every account's balance recomputed from the journal alone."""
    balances: dict[str, int] = {}
    for entry in entries:
        fields = entry.fields
        balances[fields.payer] = balances.get(fields.payer, 0) - fields.amount
        balances[fields.payee] = balances.get(fields.payee, 0) + fields.amount
    return balances



LIMIT_RE = re.compile(r"^(-?)(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,6}))?$")


def parse_limit(value: object, *, decimals: int, field: str) -> int:
    """A balance limit in minor units from a decimal string that may be negative or zero."""
    match = LIMIT_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(
            Text("%(field)s must be a decimal string such as \"-300\"", field=field),
                {field: "e.g. -300 or 1000"}
        )
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    if len(fraction) > decimals:
        raise ValidationError(
            Text("%(field)s has more than %(decimals)s decimal places", field=field,
                 decimals=decimals),
            {field: Text("at most %(decimals)s decimal places", decimals=decimals)},
        )
    units = int(whole) * int(10**decimals) + int(fraction.ljust(decimals, "0") or 0)
    if units > MAX_AMOUNT_UNITS:
        raise ValidationError(Text("%(field)s is too large", field=field),
            {field: "limit too large"})
    return -units if sign else units
