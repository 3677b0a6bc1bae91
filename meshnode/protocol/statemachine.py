"""Declared state machines: each state's exits, and who may take each one.

Deals, cross-node transfers, trust lines and peering each declare a :class:`StateGraph`; it
is checked when it is defined (so when its module is imported): unknown states, exits from
terminal states, dead ends, unknown roles and unreachable states are refused. Code then asks
the graph for the next state instead of writing if-chains; a missing edge means the event
does not apply (a late or repeated message is ignored, an admin action is refused).
Modelled on Takahē's ``stator`` graphs (STYLE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Transition:
    """One edge: the next state and the roles that may take it."""

    to: str
    by: frozenset[str]


def edge(to: str, *by: str) -> Transition:
    """An edge to ``to`` that the roles ``by`` may take."""
    return Transition(to, frozenset(by))


def check_graph(edges: Mapping[str, Mapping[str, Transition]], *, states: frozenset[str],
                initial: frozenset[str], terminal: frozenset[str],
                roles: frozenset[str]) -> None:
    """Refuse a malformed table (ValueError): the states must be exactly ``states``; terminal
    states have no exits and the others have some; every edge leads to a known state and
    names known roles; every state is reachable from an initial one."""
    if set(edges) != states:
        raise ValueError(f"states differ: {sorted(set(edges) ^ states)}")
    if not initial or not initial <= states or not terminal <= states:
        raise ValueError("initial and terminal states must be known states")
    for state, exits in edges.items():
        if state in terminal and exits:
            raise ValueError(f"terminal state {state!r} has exits")
        if state not in terminal and not exits:
            raise ValueError(f"state {state!r} is a dead end")
        for event, transition in exits.items():
            if transition.to not in edges:
                raise ValueError(f"{state}.{event} leads to unknown state {transition.to!r}")
            if not transition.by or not transition.by <= roles:
                raise ValueError(f"{state}.{event} has unknown roles {sorted(transition.by)}")
    seen, todo = set(initial), list(initial)
    while todo:
        for transition in edges[todo.pop()].values():
            if transition.to not in seen:
                seen.add(transition.to)
                todo.append(transition.to)
    if seen != states:
        raise ValueError(f"unreachable states: {sorted(states - seen)}")


@dataclass(frozen=True)
class StateGraph:
    """A named, checked transition table (checked when constructed)."""

    name: str
    edges: Mapping[str, Mapping[str, Transition]]
    initial: frozenset[str]
    terminal: frozenset[str]
    roles: frozenset[str]

    def __post_init__(self) -> None:
        check_graph(self.edges, states=self.states, initial=self.initial,
                    terminal=self.terminal, roles=self.roles)

    @property
    def states(self) -> frozenset[str]:
        """Every state of the graph."""
        return frozenset(self.edges)

    def transition(self, state: str, event: str) -> Transition | None:
        """The edge ``event`` takes from ``state``, or None when it does not apply."""
        return self.edges.get(state, {}).get(event)

    def next_state(self, state: str, event: str, role: str) -> str | None:
        """The state after ``event`` taken by ``role``; None when the table has no such edge
        or ``role`` may not take it."""
        found = self.transition(state, event)
        return found.to if found is not None and role in found.by else None

    def events(self, state: str, role: str) -> list[str]:
        """The events ``role`` may take from ``state``."""
        return [event for event, found in self.edges.get(state, {}).items()
                if role in found.by]
