"""Conversion between two communities' currencies at a line's agreed rate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.iou.vocab import RATE_MAX_DIGITS
from meshnode.protocol.parsing import parse_decimal

# --- conversion -----------------------------------------------------------------------------

RATE_CONTEXT = Context(prec=60)


def parse_rate(value: object) -> Decimal:
    """A conversion rate as an exact positive decimal string, e.g. ``"1.25"``."""
    if not isinstance(value, str) or not 0 < len(value) <= 30:
        raise ValidationError("rate must be a decimal string such as \"1.5\"", {"rate": "e.g. 1.5"})
    if value.strip() != value or "e" in value.lower():
        raise ValidationError("rate must be written as a plain decimal", {"rate": "e.g. 1.5"})
    rate = parse_decimal(value, "rate", max_digits=RATE_MAX_DIGITS, places=RATE_MAX_DIGITS)
    if rate <= 0 or len(rate.as_tuple().digits) > RATE_MAX_DIGITS:
        raise ValidationError("rate must be a positive decimal", {"rate": "positive, e.g. 1.5"})
    return rate


def convert(units: int, *, rate: Decimal, from_decimals: int, to_decimals: int) -> int:
    """Minor units of one currency → the other: ``value × rate``, rounded half-even.

    Exact Decimal arithmetic (never float), rounded once to the target currency's decimals
    (REFERENCE §6: Credit Commons rounds converted amounts half-even).
    """
    value = RATE_CONTEXT.multiply(Decimal(units), rate)
    scaled = RATE_CONTEXT.multiply(value, Decimal(10) ** (to_decimals - from_decimals))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def convert_back(units: int, *, rate: Decimal, from_decimals: int, to_decimals: int) -> int:
    """The inverse direction of a line: ``value ÷ rate``, rounded half-even."""
    value = RATE_CONTEXT.divide(Decimal(units), rate)
    scaled = RATE_CONTEXT.multiply(value, Decimal(10) ** (to_decimals - from_decimals))
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
        ratio = self.rate if self.is_proposer else RATE_CONTEXT.divide(Decimal(1), self.rate)
        return RATE_CONTEXT.multiply(ratio, scale)

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
