"""Path finding over trust lines: the fewest hops with room for the amount, then the most
capacity (:func:`choose_route`); :func:`find_routes` ranks by capacity for "at most N now"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.iou.rates import RATE_CONTEXT, LineView, payee_amounts
from meshnode.protocol.iou.vocab import MAX_HOPS

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
        in_payer_units = RATE_CONTEXT.divide(Decimal(edge.capacity), factor)
        capacity = in_payer_units if capacity is None else min(capacity, in_payer_units)
        factor = RATE_CONTEXT.multiply(factor, edge.ratio)
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


def by_hops(routes: Sequence[Route]) -> list[Route]:
    """Fewest hops first, then most capacity, then by name.

    The simulator (docs/scale.md) showed why: ranking by capacity alone sent payments over
    four lines when one or two had room, so each held funds at more intermediate nodes and
    took longer, and a hub's fresh lines drew every payment onto long detours.
    """
    return sorted(routes, key=lambda route: (route.hops, -route.capacity, route.nodes))


def choose_route(edges: Sequence[Edge], source: str, target: str, amount: int) -> Route | None:
    """The shortest route with room for ``amount`` (payer units), the roomiest of those, or
    None."""
    for route in by_hops(find_routes(edges, source, target)):
        if route.capacity >= amount:
            return route
    return None


def choose_route_for_payee(edges: Sequence[Edge], source: str, target: str,
                           payee_units: int) -> tuple[Route, tuple[int, ...]] | None:
    """The shortest route on which the payee can receive exactly ``payee_units`` (their units),
    with every node's amount (:func:`payee_amounts`); None when no route has the room."""
    best: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        known = best.get((edge.source, edge.target))
        if edge.view is not None and (known is None or edge.capacity > known.capacity):
            best[(edge.source, edge.target)] = edge
    for route in by_hops(find_routes(list(best.values()), source, target)):
        hops = [best[(a, b)] for a, b in zip(route.nodes, route.nodes[1:], strict=False)]
        try:
            amounts = payee_amounts([edge.view for edge in hops if edge.view], payee_units)
        except ValidationError:
            continue
        if all(amounts[index] <= edge.capacity for index, edge in enumerate(hops)):
            return route, amounts
    return None
