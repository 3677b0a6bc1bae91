"""Federation resources and background workers, opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import aiohttp
from aiohttp import web

from meshnode.federation import blocklists
from meshnode.federation.delivery import LOOP_ERRORS, DeliveryWorker
from meshnode.federation.directory import ActorDirectory, FetchBudget, StrangerFetchBudget
from meshnode.federation.http import FederationClient, GuardedResolver, UrlGuard
from meshnode.federation.inbox import read_sender
from meshnode.federation.iou import IouNetworkImpl, IouWorker
from meshnode.federation.names import ActorRefreshWorker
from meshnode.federation.processing import InboxWorker
from meshnode.federation.readers import ReaderWorker
from meshnode.federation.resolver import PeeringWorker
from meshnode.federation.state import (
    CONTEXT,
    FEDERATION,
    BlockedOrigins,
    Federation,
    InboxQuota,
    InboxWriter,
    SenderFacts,
)
from meshnode.federation.sync import SyncWorker
from meshnode.federation.tasks import cancel_and_wait, wait_event
from meshnode.services import account_deletion, deal_payments, deals, notifications, receipts
from meshnode.services import queue as queue_service
from meshnode.services.context import NodeContext
from meshnode.store import StorageFullError, StorageHealth
from meshnode.store import federation as fq

log = logging.getLogger(__name__)
PEERING_POLL = 1.0
SYNC_POLL = 2.0
DEALS_POLL = 5.0
NAMES_POLL = 60.0
READERS_POLL = 300.0  # legacy followers are classified at start; later rows are stamped
INBOX_PRUNE_SECONDS = 3600.0  # processed inbox rows past their retention go once an hour
RECEIPTS_SECONDS = 600.0  # deals that missed their receipt are looked for every 10 minutes
NOTIFICATIONS_PRUNE_SECONDS = 3600.0  # old read notifications and over-cap ones, hourly


class DealWorker:
    """Expires unanswered deal requests, settles group buys at their deadline, gives the turn
    of waiting lists (``services.queue``), and pays cross-node deals booked by our members
    (``services.deal_payments``)."""

    def __init__(self, ctx: NodeContext, network: IouNetworkImpl | None = None) -> None:
        self.ctx = ctx
        self.network = network
        self._last_run: dict[str, float] = {}

    def _due(self, chore: str, every: float) -> bool:
        """True (and noted) when ``chore`` last ran ``every`` seconds ago or never."""
        now = self.ctx.clock().timestamp()
        last = self._last_run.get(chore)
        if last is not None and now - last < every:
            return False
        self._last_run[chore] = now
        return True

    async def step(self) -> int:
        """One pass over due deals and due payments; returns how many moved."""
        moved = await deals.run_due(self.ctx)
        moved += await queue_service.run_due(self.ctx)  # waiting lists of returned items
        await notifications.warn_expiring(self.ctx)
        if self._due("notifications", NOTIFICATIONS_PRUNE_SECONDS):
            await notifications.prune(self.ctx)
        if self._due("receipts", RECEIPTS_SECONDS):
            moved += await receipts.issue_missing(self.ctx)
        if self.network is not None:
            moved += await deal_payments.pay_due(self.ctx, self.network)
        # account deletions (RGPD) ride this loop: each step cancels deals, queues Deletes
        moved += await account_deletion.step(self.ctx)
        return moved



@dataclass(frozen=True)
class Workers:
    """The node's federation workers; tests call their ``step()`` directly."""

    inbox: InboxWorker
    delivery: DeliveryWorker
    peering: PeeringWorker
    sync: SyncWorker
    iou: IouWorker
    deals: DealWorker
    # Not in step_all: it only refreshes names after hours; tests step it themselves.
    names: ActorRefreshWorker
    readers: ReaderWorker

    async def step_all(self) -> int:
        """One round of every worker (tests); returns the amount of work done."""
        done = await self.peering.step()
        done += await self.iou.step()
        done += await self.inbox.step()
        done += await self.sync.step()
        done += await self.deals.step()
        done += await self.readers.step()
        done += await self.delivery.step()
        return done


WORKERS = web.AppKey("federation_workers", Workers)
IOU_NETWORK = web.AppKey("iou_network", IouNetworkImpl)
# Seconds a payment request waits for the outcome before answering 202 (0: workers stepped).
IOU_WAIT = web.AppKey("iou_wait", float)
IOU_POLL = 1.0


# While activities arrive in a burst, the inbox worker pauses this many times the CPU its
# last batch used, so answering peers (store + 202) gets most of the CPU and processing
# catches up once the burst is over; the backlog cap bounds what can wait. CPU, not wall
# time: a batch mostly waiting on fsync leaves the CPU free, and pausing for that wait left
# the node 75-95 % idle while its backlog grew (bench_federation --replication).
INTAKE_PRIORITY = 5.0
# The pause is taken in slices; it ends early after a slice in which the event loop's thread
# used less than IDLE_SHARE of the CPU: the intake did not need what the worker gave up, and
# idling then only delayed processing (bench_federation --ingest: the door, waiting on its
# group commits, left a third of the core idle while the backlog grew).
GIVE_WAY_SLICE = 0.002
IDLE_SHARE = 0.5


async def yield_to_intake(seconds: float, *,
                          loop_cpu: Callable[[], float] = time.thread_time) -> None:
    """Pause up to ``seconds`` so the intake gets the CPU, but only while it uses it.

    ``loop_cpu`` reads the CPU time of the event loop's thread (tests pass a stand-in)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        started, cpu = loop.time(), loop_cpu()
        await asyncio.sleep(min(GIVE_WAY_SLICE, remaining))
        if loop_cpu() - cpu < IDLE_SHARE * (loop.time() - started):
            return


async def _loop(name: str, step: Callable[[], Awaitable[int]], event: asyncio.Event | None,
                poll: float, *, give_way: Callable[[], bool] | None = None,
                health: StorageHealth | None = None) -> None:
    """Run ``step`` while it finds work, else sleep until ``event`` or ``poll`` seconds.

    When ``give_way()`` says so after a busy step, pause ``INTAKE_PRIORITY`` times the process
    CPU time that step took (the inbox gives way to peers' requests during a burst).
    """
    loop = asyncio.get_running_loop()
    while True:
        if event is not None:
            event.clear()
        started = time.process_time()
        try:
            busy = await step()
        except StorageFullError as exc:  # one line a minute, not a traceback per round
            if health is not None and health.log_due(loop.time()):
                log.warning("%s worker: storage full (%s); retrying", name, exc.detail)
            busy = 0
        except LOOP_ERRORS:
            log.exception("%s worker", name)
            busy = 0
        if busy:
            if give_way is not None and give_way():
                await yield_to_intake(INTAKE_PRIORITY * (time.process_time() - started))
            continue
        if event is None:
            await asyncio.sleep(poll)
        else:
            await wait_event(event, poll)  # not wait_for: it can lose a cancel (tasks.py)


async def _inbox_loop(worker: InboxWorker, federation: Federation,
                      health: StorageHealth | None = None) -> None:
    """Process the inbox, giving way to the intake during bursts."""
    await _loop("inbox", worker.step, federation.inbox_event, 1.0,
                give_way=federation.writer.intake_busy, health=health)


async def _every(seconds: float, step: Callable[[], Awaitable[int]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await step()
        except LOOP_ERRORS:
            log.exception("periodic worker")


def _connector(ctx: NodeContext, guard: UrlGuard) -> aiohttp.TCPConnector:
    """The pooled connector: deliveries may hold ``delivery_concurrency`` connections to a
    host, and 4 more stay free for key fetches, catch-up and IOU messages to it."""
    return aiohttp.TCPConnector(limit=100, limit_per_host=ctx.config.delivery_concurrency + 4,
                                resolver=GuardedResolver(guard))


def _workers(federation: Federation, network: IouNetworkImpl) -> Workers:
    per_host = federation.ctx.config.delivery_concurrency
    return Workers(InboxWorker(federation), DeliveryWorker(federation, per_host=per_host),
                   PeeringWorker(federation), SyncWorker(federation),
                   IouWorker(federation, network), DealWorker(federation.ctx, network),
                   ActorRefreshWorker(federation), ReaderWorker(federation))


def federation_context(*, run_workers: bool) -> Callable[[web.Application],
                                                          AsyncIterator[None]]:
    """The ``cleanup_ctx`` entry: pooled client session, runtime, and (optionally) loops."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        ctx = app[CONTEXT]
        guard = UrlGuard(allow_private=ctx.config.allow_private_addresses)
        async with aiohttp.ClientSession(connector=_connector(ctx, guard)) as session:
            client = FederationClient(session, guard)
            federation = Federation(ctx=ctx, client=client,
                                    directory=ActorDirectory(ctx, client),
                                    writer=InboxWriter(ctx), blocked=BlockedOrigins(ctx),
                                    senders=SenderFacts(ctx, read_sender),
                                    budget=FetchBudget(ctx.config.inbox.key_fetches_per_hour),
                                    stranger_budget=StrangerFetchBudget(
                                        ctx.config.inbox.key_fetches_per_hour,
                                        ctx.config.inbox.stranger_key_fetches_per_hour),
                                    quota=InboxQuota(ctx))
            network = IouNetworkImpl(federation)
            workers = _workers(federation, network)
            app[FEDERATION] = federation
            app[WORKERS] = workers
            app[IOU_NETWORK] = network
            app[IOU_WAIT] = ctx.config.iou_sync_wait if run_workers else 0.0
            async with ctx.store.transaction() as tx:
                await fq.request_sync_all(tx)  # catch up after a restart
            federation.writer.backlog = await fq.count_unprocessed(ctx.store.reader)
            tasks: list[asyncio.Task[None]] = []
            health = ctx.store.health
            if run_workers:
                tasks = [
                    asyncio.create_task(_inbox_loop(workers.inbox, federation, health)),
                    asyncio.create_task(workers.delivery.run_forever()),
                    asyncio.create_task(_loop("peering", workers.peering.step, None,
                                              PEERING_POLL, health=health)),
                    asyncio.create_task(_loop("sync", workers.sync.step, None, SYNC_POLL,
                                              health=health)),
                    asyncio.create_task(_loop("iou", workers.iou.step, None, IOU_POLL,
                                              health=health)),
                    asyncio.create_task(_every(ctx.config.iou_reconcile_seconds,
                                               workers.iou.reconcile)),
                    asyncio.create_task(_every(INBOX_PRUNE_SECONDS, workers.inbox.prune)),
                    asyncio.create_task(_every(blocklists.REFRESH_SECONDS,
                                               partial(blocklists.refresh_all, federation))),
                    asyncio.create_task(_loop("deals", workers.deals.step,
                                              federation.deals_event, DEALS_POLL,
                                              health=health)),
                    asyncio.create_task(_loop("names", workers.names.step, None, NAMES_POLL,
                                              health=health)),
                    asyncio.create_task(_loop("readers", workers.readers.step, None,
                                              READERS_POLL, health=health)),
                ]
            try:
                yield
            finally:
                await cancel_and_wait(tasks, what="federation workers")

    return context
