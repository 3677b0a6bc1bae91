"""SIGKILL during cross-node payments: real ``meshnode run`` processes, then restart.

1. The payer's node is killed right after preparing (the payee's node is down too, so the
   offer is still in the payer's outbox); both restart: the payment completes once.
2. The payee's node is killed right after committing; it restarts and its durable answer
   reaches the payer: one consistent outcome, ledgers agree, sums zero, lines mirror.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshnode.config import Config
from meshnode.services import ledger, members
from meshnode.services.context import NodeContext
from meshnode.store import iou as iq
from tests.conftest import make_config
from tests.federation.conftest import bind_socket
from tests.federation.test_crash_recovery import _cli, _start
from tests.nodeproc import wait_healthy

pytestmark = pytest.mark.slow


async def _token(config: Config, username: str) -> str:
    ctx = await NodeContext.open(config)
    try:
        await members.add_member(ctx, username=username, password=None, is_admin=True)
        return (await members.create_token(ctx, username)).secret
    finally:
        await ctx.close()


def _config(root: Path, name: str) -> Config:
    probe = bind_socket()
    port = probe.getsockname()[1]
    probe.close()
    return make_config(root / name, handle=name, name=name, port=port,
                       public_url=f"http://127.0.0.1:{port}")


def _db(config: Config, sql: str, *params: object) -> list[Any]:
    with sqlite3.connect(f"file:{config.database_path}?mode=ro", uri=True, timeout=5) as conn:
        return list(conn.execute(sql, params).fetchall())


async def _until(check: Any, limit: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def _verify(a: Config, b: Config) -> None:
    views = {}
    for config in (a, b):
        ctx = await NodeContext.open(config)
        try:
            report = await ledger.verify_journal(ctx)
            assert report.ok, report.describe()
            (line,) = await iq.list_lines(ctx.store.reader)
            local, peer, _ = await iq.line_totals(ctx.store.reader, line.id)
            views[config.handle] = (local, peer)
        finally:
            await ctx.close()
    assert views["alpha"] == (views["beta"][1], views["beta"][0])
    states_a = dict(_db(a, "SELECT id, state FROM iou_transfers"))
    states_b = dict(_db(b, "SELECT id, state FROM iou_transfers"))
    for transfer_id, state in states_a.items():
        assert state != "prepared"
        assert (state == "committed") == (states_b.get(transfer_id) == "committed")


async def test_sigkill_after_prepare_and_after_commit__one_consistent_outcome(
    tmp_path: Path,
) -> None:
    a, b = _config(tmp_path, "alpha"), _config(tmp_path, "beta")
    ha = {"Authorization": f"Bearer {await _token(a, 'alice')}"}
    hb = {"Authorization": f"Bearer {await _token(b, 'bob')}"}
    procs = {"a": _start(a.data_dir), "b": _start(b.data_dir)}
    try:
        await wait_healthy(a.base_url)
        await wait_healthy(b.base_url)
        _cli("trustline", "propose", "--data-dir", str(a.data_dir), "--peer", b.base_url,
             "--limit-out", "100", "--limit-in", "100", "--rate", "1")
        await _until(lambda: bool(_db(b, "SELECT id FROM iou_lines WHERE state = 'pending'")))
        (line_id,) = _db(b, "SELECT id FROM iou_lines")[0]
        _cli("trustline", "accept", "--data-dir", str(b.data_dir), line_id)
        await _until(lambda: bool(_db(a, "SELECT 1 FROM iou_lines WHERE state = 'active'")))
        async with aiohttp.ClientSession() as session:
            payee = f"bob@{b.base_url.split('//')[1]}"
            # warm the WebFinger/actor caches while beta is up
            async with session.post(f"{a.base_url}/api/v1/transfers", headers=ha,
                                    json={"payee": payee, "amount": "1"}) as response:
                assert response.status == 201, await response.text()
            # 1. beta down; alpha prepares, then alpha is killed
            procs["b"].send_signal(signal.SIGKILL)
            procs["b"].wait()
            async with session.post(f"{a.base_url}/api/v1/transfers", headers=ha,
                                    json={"payee": payee, "amount": "2"}) as response:
                assert response.status == 202, await response.text()
                first = (await response.json())["id"]
            procs["a"].send_signal(signal.SIGKILL)
            procs["a"].wait()
            assert _db(a, "SELECT state FROM iou_transfers WHERE id = ?", first) == [
                ("prepared",)]
            procs["b"], procs["a"] = _start(b.data_dir), _start(a.data_dir)
            await wait_healthy(a.base_url)
            await wait_healthy(b.base_url)
            await _until(lambda: _db(a, "SELECT state FROM iou_transfers WHERE id = ?",
                                     first) == [("committed",)])
            # 2. beta killed the moment it has committed a payment
            task = asyncio.create_task(session.post(
                f"{a.base_url}/api/v1/transfers", headers=ha,
                json={"payee": payee, "amount": "3"}))
            await _until(lambda: len(_db(b, "SELECT 1 FROM iou_transfers WHERE state ="
                                            " 'committed'")) == 3, limit=20)
            procs["b"].send_signal(signal.SIGKILL)
            procs["b"].wait()
            (await task).release()
            procs["b"] = _start(b.data_dir)
            await wait_healthy(b.base_url)
            await _until(lambda: not _db(a, "SELECT 1 FROM iou_transfers WHERE state ="
                                            " 'prepared'"))
            async with session.get(f"{b.base_url}/api/v1/wallet", headers=hb) as response:
                assert response.status == 200
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    await _verify(a, b)
    assert _db(a, "SELECT balance FROM ledger_accounts WHERE name = 'alice'") == [(-600,)]
    assert _db(b, "SELECT balance FROM ledger_accounts WHERE name = 'bob'") == [(600,)]
