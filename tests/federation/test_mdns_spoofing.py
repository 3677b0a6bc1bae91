"""mDNS has no authentication: each spoofed advert below must never lead to verification.

The attacker is real: its own AsyncZeroconf on 127.0.0.1 and its own HTTP server.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from zeroconf import DNSAddress, DNSOutgoing, DNSPointer, DNSService, DNSText, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from meshnode.federation import mdns as disc
from meshnode.protocol.challenge import answer_challenge, new_challenge, parse_challenge
from meshnode.protocol.discovery import SERVICE_TYPE, Advert, build_txt, encode_txt
from meshnode.protocol.multikey import ed25519_public_to_multikey
from meshnode.services.context import utc_now
from tests.federation.mdns_nodes import Node, ensure_loopback_multicast, start_node, wait_until
from tests.nodeproc import free_port

pytestmark = pytest.mark.timeout(30)
LOCALHOST = bytes([127, 0, 0, 1])
ChallengeHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@pytest.fixture(autouse=True)
def _multicast() -> None:
    ensure_loopback_multicast()


class Attacker:
    """A hostile host on the LAN: raw adverts plus an HTTP server it controls."""

    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.seed = secrets.token_bytes(32)
        self.aiozc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        self.description: dict[str, Any] = {}
        self.actor: dict[str, Any] | None = None
        self.on_challenge: ChallengeHandler | None = None
        self.runner: web.AppRunner | None = None

    async def serve(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/meshnode", self._describe)
        app.router.add_post("/.well-known/meshnode/challenge", self._challenge)
        app.router.add_get("/groups/{handle}", self._actor)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _describe(self, request: web.Request) -> web.Response:
        return web.json_response(self.description)

    async def _actor(self, request: web.Request) -> web.Response:
        if self.actor is None:
            raise web.HTTPNotFound()
        return web.json_response(self.actor, content_type="application/activity+json")

    async def _challenge(self, request: web.Request) -> web.Response:
        assert self.on_challenge is not None
        return web.json_response(await self.on_challenge(await request.json()))

    async def advertise(self, instance: str, txt: bytes) -> str:
        name = f"{instance}.{SERVICE_TYPE}"
        info = AsyncServiceInfo(SERVICE_TYPE, name, port=self.port, properties=txt,
                                server=f"evil-{uuid.uuid4().hex[:8]}.local.",
                                addresses=[LOCALHOST])
        await self.aiozc.async_register_service(info, allow_name_change=True)
        return info.name

    def flood(self, count: int, txt_for: Callable[[int], bytes]) -> list[str]:
        """Send ``count`` bogus services in a burst of raw response packets."""
        tag = uuid.uuid4().hex[:6]
        names = [f"flood-{tag}-{i}.{SERVICE_TYPE}" for i in range(count)]
        for start in range(0, count, 10):
            out = DNSOutgoing(0x8000 | 0x0400)  # response, authoritative
            for i in range(start, min(count, start + 10)):
                server = f"flood-{tag}-{i}.local."
                out.add_answer_at_time(DNSPointer(SERVICE_TYPE, 12, 1, 4500, names[i]), 0)
                out.add_answer_at_time(
                    DNSService(names[i], 33, 0x8001, 120, 0, 0, self.port, server), 0)
                out.add_answer_at_time(DNSText(names[i], 16, 0x8001, 4500, txt_for(i)), 0)
                out.add_answer_at_time(DNSAddress(server, 1, 0x8001, 120, LOCALHOST), 0)
            self.aiozc.zeroconf.async_send(out)
        return names

    async def close(self) -> None:
        await self.aiozc.async_unregister_all_services()
        await self.aiozc.async_close()
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def attacker() -> Any:
    evil = Attacker()
    await evil.serve()
    yield evil
    await evil.close()


async def _instance_row(node: Node, instance: str) -> Any:
    rows = [r for r in await node.neighbours() if r.instance_name == instance]
    return rows[0] if rows else None


async def _copy_victim(attacker: Attacker, victim: Node) -> bytes:
    """The attacker copies the victim's public description and TXT, with its own address."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{victim.url}/.well-known/meshnode") as resp:
            attacker.description = await resp.json()
        # The actor document is public too: the attacker serves a copy under its own address,
        # so only the challenge (proof of the private key) can tell it apart.
        async with http.get(victim.actor, headers={"Accept": "application/activity+json"}) as resp:
            actor = await resp.json()
    attacker.actor = {**actor, "id": f"{attacker.origin}/groups/beta"}
    return build_txt(Advert(victim.ctx.identity.ed25519_public, "/groups/beta", "Les Voisins"))


async def _assert_spoof_fails(alpha: Node, instance: str, expected_error: str) -> None:
    row = await wait_until(lambda: _instance_row(alpha, instance))
    assert row.status == "discovered"
    # When alpha's verifier steps until it has tried this neighbour once (a step takes at
    # most BATCH due rows, and other test runs may announce nodes on lo at the same time)
    for _ in range(20):
        await alpha.runtime.verifier.step()
        row = await _instance_row(alpha, instance)
        if row.attempts:
            break
    # Then the spoofed neighbour is not verified, the reason is recorded, nothing is peered
    assert row.status == "discovered"
    assert row.verified_at is None
    assert row.actor_url is None
    assert row.attempts == 1
    assert expected_error in (row.last_error or "")
    assert all(r.status != "peering_requested" for r in await alpha.neighbours()
               if r.instance_name == instance)


async def test_spoof__victims_key_with_attackers_address_signing_with_own_key(
    tmp_path: Path, attacker: Attacker
) -> None:
    # Given a real victim node and an attacker advertising the victim's key at its own address
    alpha = await start_node(tmp_path, "alpha", run_workers=False)
    beta = await start_node(tmp_path, "beta", policy="off")
    try:
        txt = await _copy_victim(attacker, beta)

        async def own_key(body: dict[str, Any]) -> dict[str, Any]:
            challenge = parse_challenge(body)
            return answer_challenge(challenge, attacker.seed, utc_now(),
                                    {attacker.origin}).as_json()

        attacker.on_challenge = own_key
        instance = await attacker.advertise("Les Voisins (EVIL-0001)", txt)
        await _assert_spoof_fails(alpha, instance, "key other than the advertised one")
    finally:
        await alpha.stop()
        await beta.stop()


async def test_spoof__attacker_relays_challenge_to_the_real_key_holder(
    tmp_path: Path, attacker: Attacker
) -> None:
    # Given an attacker that forwards our challenge to the victim, who holds the key
    alpha = await start_node(tmp_path, "alpha", run_workers=False)
    beta = await start_node(tmp_path, "beta", policy="off")
    try:
        txt = await _copy_victim(attacker, beta)

        async def relay(body: dict[str, Any]) -> dict[str, Any]:
            async with aiohttp.ClientSession() as http, http.post(
                f"{beta.url}/.well-known/meshnode/challenge", json=body
            ) as resp:
                return dict(await resp.json())

        attacker.on_challenge = relay
        instance = await attacker.advertise("Les Voisins (EVIL-0002)", txt)
        # Then the victim refuses a challenge aimed at another origin, so nothing verifies
        await _assert_spoof_fails(alpha, instance, "challenge field")
    finally:
        await alpha.stop()
        await beta.stop()


async def test_spoof__replayed_challenge_response(tmp_path: Path, attacker: Attacker) -> None:
    # Given an attacker holding a genuine response the victim signed earlier
    alpha = await start_node(tmp_path, "alpha", run_workers=False)
    beta = await start_node(tmp_path, "beta", policy="off")
    try:
        txt = await _copy_victim(attacker, beta)
        old = new_challenge(secrets.token_bytes(32), utc_now(), beta.url)
        async with aiohttp.ClientSession() as http, http.post(
            f"{beta.url}/.well-known/meshnode/challenge", json=old.as_json()
        ) as resp:
            assert resp.status == 200
            captured = dict(await resp.json())

        async def replay(body: dict[str, Any]) -> dict[str, Any]:
            return captured

        attacker.on_challenge = replay
        instance = await attacker.advertise("Les Voisins (EVIL-0003)", txt)
        # Then the captured response answers another nonce and target: rejected
        await _assert_spoof_fails(alpha, instance, "different challenge")
    finally:
        await alpha.stop()
        await beta.stop()


@pytest.mark.parametrize(
    "txt",
    [
        pytest.param(b"\x05hello\x03a=b\xff", id="garbage"),
        pytest.param(b"\xff" + b"x=" + b"y" * 253 + b"\xff" + b"z=" + b"y" * 253, id="oversized"),
        pytest.param(
            encode_txt([("txtvers", "1"), ("pv", "1"), ("pk", "z6Mk1"), ("path", "/g/x"),
                        ("name", "n")]), id="bad-key"),
    ],
)
async def test_spoof__invalid_txt_never_stored(
    tmp_path: Path, attacker: Attacker, txt: bytes
) -> None:
    # Given a node browsing, and an attacker advertising an unusable TXT record
    alpha = await start_node(tmp_path, "alpha", run_workers=False)
    try:
        before = alpha.runtime.discovery.stats.bad_adverts
        instance = await attacker.advertise(f"Bad {uuid.uuid4().hex[:6]}", txt)
        # When alpha resolves it, Then the advert is counted as bad and nothing is stored
        await wait_until(lambda: _gt(alpha.runtime.discovery.stats.bad_adverts, before))
        assert await _instance_row(alpha, instance) is None
        # (other meshnode nodes on this host's loopback may be verified meanwhile; the
        # attacker's advert never is)
        await alpha.runtime.verifier.step()
        assert await _instance_row(alpha, instance) is None
    finally:
        await alpha.stop()


async def _gt(value: int, floor: int) -> bool:
    return value > floor


async def test_spoof__advert_flood_stays_bounded_and_node_responsive(
    tmp_path: Path, attacker: Attacker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a small neighbour cap, so the test shows the cap without thousands of adverts
    monkeypatch.setattr(disc, "MAX_NEIGHBOURS", 50)
    alpha = await start_node(tmp_path, "alpha")
    try:
        discovery = alpha.runtime.discovery
        def txt_for(i: int) -> bytes:
            if i % 2:
                return b"\x07garbage"
            key = ed25519_public_to_multikey(secrets.token_bytes(32))
            return encode_txt([("txtvers", "1"), ("pv", "1"), ("pk", key),
                               ("path", "/groups/x"), ("name", f"Flood {i}")])

        # When 400 bogus services are announced in one burst
        started = time.monotonic()
        names = attacker.flood(400, txt_for)
        # Then the node keeps answering quickly while it works through them
        async with aiohttp.ClientSession() as http:
            for _ in range(10):
                tick = time.monotonic()
                async with http.get(f"{alpha.url}/healthz") as resp:
                    assert resp.status == 200
                assert time.monotonic() - tick < 0.5
                await asyncio.sleep(0.2)
        await wait_until(lambda: _gt(discovery.stats.events, len(names) - 1), timeout=10)
        await wait_until(lambda: _queue_empty(discovery), timeout=10)
        elapsed = time.monotonic() - started
        # And resolution work stayed bounded: queue capped, network queries rate-limited
        assert discovery.queue.high_water <= disc.RESOLVE_QUEUE_MAX
        assert discovery.stats.queries <= disc.RESOLVE_BURST + disc.RESOLVE_RATE * elapsed + 2
        assert discovery.stats.bad_adverts > 0
        # (every advert was either dropped at the full queue or resolved from the cache)
        assert discovery.stats.dropped + discovery.stats.resolved >= len(names)
        # And the neighbour table is capped, with nothing verified or peered
        rows = await alpha.neighbours()
        assert len(rows) <= 50
        assert discovery.stats.table_full > 0
        # (only the flood's own rows: a real node of a concurrent test run may be verified)
        flooded = [r for r in rows if r.instance_name in names]
        assert flooded
        assert all(r.status in ("discovered", "rejected") for r in flooded)
    finally:
        await alpha.stop()


async def _queue_empty(discovery: disc.Discovery) -> bool:
    return len(discovery.queue) == 0
