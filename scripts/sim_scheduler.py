"""Virtual time for the simulated network: a heap of what is due, nothing else is run.

Three kinds of entries share one heap, ordered by virtual second and then by the order
they were pushed (so a run is reproducible):

* an **action** (the workload: publish, edit, withdraw, cut, heal, leave, come back);
* a **message** in flight (``sim_network.Message``), delivered over real HTTP at its
  latency, after which its receiver is woken;
* a **node wake-up**: the node's workers are stepped (peering, IOU, inbox, sync, deals, then
  deliveries) until they find nothing more to do, then the next wake-up is read from its
  own store: its earliest due delivery (``deliveries.next_attempt_at``), its earliest due
  catch-up (``peers``: 30 minutes after the last pull, 5 after a failed one), else
  ``housekeeping`` seconds on (the deal and IOU workers' timers; moved by up to
  ``HOUSEKEEPING_SLACK`` to share a pull's wake-up). A node with nothing due
  is not touched; a node woken by a message or an action is stepped at that instant.

A node's ``Federation`` events (``inbox_event``, ``delivery_event``, …), which wake the real
background loops, wake it here too: they are read after each action and each delivery.
Offline nodes are not stepped; the action that brings one back wakes it.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from meshnode.federation.sync import SYNC_INTERVAL, SYNC_RETRY
from meshnode.protocol.timefmt import parse_utc
from meshnode.store import outbox as oq
from meshnode.store.db import query
from scripts.sim_network import START, Message, SimClock, SimNet, SimNode

Action = Callable[[], Awaitable[None]]
Payload = tuple[Action, int | None] | Message | int
MAX_PASSES = 50  # worker passes in one wake-up before it is left for the next one
START_OF_TIME = float("-inf")
# Housekeeping (the deal and IOU timers) moves by up to this much to share a wake-up with a
# catch-up pull: earlier when a pull comes first, later when one follows soon after.
HOUSEKEEPING_SLACK = 300.0
IDLE_RETRY = 60.0  # a node whose due work did not move is looked at again this much later
PEERED = ("SELECT sync_due, last_sync_at, last_sync_attempt_at FROM peers WHERE"
          " out_state = 'peered' AND blocked = 0 AND actor_id IS NOT NULL")


def _seconds(stamp: str | None) -> float | None:
    """Virtual seconds of a stored ``format_utc`` stamp."""
    if stamp is None:
        return None
    return (parse_utc(stamp, field="stamp") - START).total_seconds()


async def next_sync(node: SimNode, now: float) -> float | None:
    """When the node's sync worker next has a peer to pull (``peers_to_sync``'s rule)."""
    earliest: float | None = None
    async with query(node.ctx.store.reader, PEERED) as cursor:
        rows = await cursor.fetchall()
    for due, last, attempt in rows:
        if due:
            return now
        at = max(_or_never(_seconds(last), SYNC_INTERVAL.total_seconds()),
                 _or_never(_seconds(attempt), SYNC_RETRY.total_seconds()))
        earliest = at if earliest is None else min(earliest, at)
    return earliest


def _events(node: SimNode) -> bool:
    """Whether work was handed to the node (the events its real loops wait on)."""
    fed = node.fed
    return fed.inbox_event.is_set() or fed.delivery_event.is_set() \
        or fed.peering_event.is_set() or fed.deals_event.is_set()


def _or_never(stamp: float | None, wait: float) -> float:
    return float("-inf") if stamp is None else stamp + wait


@dataclass
class Scheduler:
    """Runs actions, messages and node wake-ups in virtual-time order."""

    clock: SimClock
    net: SimNet
    nodes: list[SimNode]
    housekeeping: float = 1800.0
    heap: list[tuple[float, int, str, Payload]] = field(default_factory=list)
    wake_at: dict[int, float] = field(default_factory=dict)
    steps: Counter[int] = field(default_factory=Counter)  # wake-ups per node
    full: set[int] = field(default_factory=set)  # nodes whose next step runs every worker
    kept: dict[int, float] = field(default_factory=dict)  # last full step of each node
    sync_at: dict[int, float] = field(default_factory=dict)  # next catch-up due
    trace: list[tuple[float, str, int]] | None = None  # (time, "step"|"deliver", node)
    rounds: int = 0  # distinct instants at which something ran
    delivered: int = 0
    _order: int = 0

    def _push(self, when: float, kind: str, payload: Payload) -> None:
        self._order += 1
        heapq.heappush(self.heap, (when, self._order, kind, payload))

    def at(self, when: float, action: Action, node: int | None = None) -> None:
        """Schedule ``action`` at virtual second ``when``; ``node``, the node it works on,
        is woken after it (a service call leaves work in the store, not in an event)."""
        self._push(when, "action", (action, node))

    def wake(self, index: int, when: float | None = None, *, full: bool = False) -> None:
        """Step node ``index`` at ``when`` (default now), unless it is woken earlier;
        ``full``: run every worker then (see ``_pass``)."""
        when = self.clock.seconds() if when is None else when
        if full:
            self.full.add(index)
        if when < self.wake_at.get(index, float("inf")):
            self.wake_at[index] = when
            self._push(when, "node", index)

    def poll(self, indexes: range | list[int]) -> None:
        """Wake the nodes whose federation events are set (work was handed to them)."""
        for index in indexes:
            if _events(self.nodes[index]):
                self.wake(index)

    def _take_in_flight(self) -> None:
        for message in self.net.in_flight:
            self._push(message.due, "message", message)
        self.net.in_flight.clear()

    async def _run_one(self) -> None:
        when, _, _, payload = heapq.heappop(self.heap)
        if when > self.clock.seconds():
            self.clock.set_seconds(when)
            self.rounds += 1
        if isinstance(payload, tuple):
            action, node = payload
            await action()
            if node is not None:
                self.wake(node, full=True)
            self.poll(range(len(self.nodes)))
        elif isinstance(payload, Message):
            status = await self.net.deliver(payload)
            self.delivered += 1
            if self.trace is not None:
                self.trace.append((when, "deliver", payload.dst))
            if status is not None:
                self.poll([payload.dst])
        elif isinstance(payload, int) and self.wake_at.get(payload) == when:
            del self.wake_at[payload]
            await self.step_node(payload)
        self._take_in_flight()

    async def step_node(self, index: int) -> int:
        """Step the node's workers that have work until none has, then book its next
        wake-up; returns the work done. Which workers run: see ``_pass``."""
        if index in self.net.offline:
            return 0
        node, now = self.nodes[index], self.clock.seconds()
        self.steps[index] += 1
        if self.trace is not None:
            self.trace.append((now, "step", index))
        full = index in self.full or now >= self.kept.get(index, START_OF_TIME) \
            + self.housekeeping - HOUSEKEEPING_SLACK
        self.full.discard(index)
        sync = full or now >= self.sync_at.get(index, START_OF_TIME)
        total = 0
        for _ in range(MAX_PASSES):
            done, inbox = await self._pass(node, full=full, sync=sync)
            total += done
            if not done and not _events(node):
                break
            full, sync = full or inbox > 0, False
        if full:
            self.kept[index] = now
        sync_at = await next_sync(node, now)
        self.sync_at[index] = float("inf") if sync_at is None else sync_at
        due = [at for at in (_seconds(await oq.next_due_time(node.ctx.store.reader)), sync_at)
               if at is not None]
        housekeeping_at = self.kept.get(index, now) + self.housekeeping
        if sync_at is not None and housekeeping_at <= sync_at <= housekeeping_at \
                + HOUSEKEEPING_SLACK:
            housekeeping_at = sync_at  # with the next pull: one wake-up, not two
        next_at = min([*due, housekeeping_at])
        self.wake(index, next_at if next_at > now else now + IDLE_RETRY)
        return total

    async def _pass(self, node: SimNode, *, full: bool, sync: bool) -> tuple[int, int]:
        """One pass over the workers; (work done, inbox activities processed).

        The inbox runs when something arrived, catch-up when a peer is due, deliveries
        always (one query when idle); peering, IOU and deals (timers the real loops poll
        every few seconds) on a full pass: when an action touched the node, when the inbox
        processed something (a payment or deal message may need their answer), and every
        ``housekeeping`` seconds. A sync-only wake-up skips them: "skip idle timers".
        """
        fed, w = node.fed, node.workers
        inbox_due = fed.inbox_event.is_set() or full
        full = full or fed.peering_event.is_set() or fed.deals_event.is_set()
        for event in (fed.inbox_event, fed.delivery_event, fed.peering_event,
                      fed.deals_event):
            event.clear()
        done = await w.peering.step() + await w.iou.step() if full else 0
        inbox = await w.inbox.step() if inbox_due else 0
        done += inbox + (await w.sync.step() if sync else 0)
        done += await w.deals.step() if full else 0
        return done + await w.delivery.step(), inbox

    async def run_until(self, end: float) -> None:
        """Run everything due up to virtual second ``end``; the clock ends there."""
        self._take_in_flight()
        while self.heap and self.heap[0][0] <= end:
            await self._run_one()
        if end > self.clock.seconds():
            self.clock.set_seconds(end)

    async def settle(self, quiet: float = 60.0, limit: int = 1_000_000) -> None:
        """Run until nothing is due within ``quiet`` seconds (set-up: peering, first pulls)."""
        for index in range(len(self.nodes)):
            self.wake(index, full=True)
        self._take_in_flight()
        for _ in range(limit):
            if not self.heap or self.heap[0][0] > self.clock.seconds() + quiet:
                return
            await self._run_one()
        raise RuntimeError("the simulated network did not settle")
