"""Memory measurements and a Pi-sized memory cgroup for real ``meshnode run`` processes.

Shared by the Pi budget test (``tests/test_pi_budget.py``) and ``scripts/bench_memory.py``:
a node set up with an admin, an API token and a browser session; ``meshnode run`` started
optionally inside a memory cgroup (v1 ``memory.limit_in_bytes`` or v2 ``memory.max``, a
child of this process's own cgroup); one round of mixed load (pages, listings, searches,
image uploads); the worst image the default decode budget accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from meshnode.config import Config, LimitsConfig
from meshnode.services import members, sessions
from meshnode.services.context import NodeContext
from meshnode.services.images import DEFAULT_DECODE_BUDGET, decode_cost
from meshnode.services.node import init_node

REPO = Path(__file__).resolve().parents[1]
CGROUP_ROOT = Path("/sys/fs/cgroup")
WORDS = ("vélo", "perceuse", "tarte", "pommes", "covoiturage", "livres", "jardin", "échelle")
# Answers a loaded node may give instead of doing the work (the client is told when to retry).
REFUSALS = (429, 503)


def proc_mb(pid: int, key: str = "VmRSS") -> float:
    """``VmRSS`` (or ``VmHWM``, ``RssAnon``…) of a process from ``/proc/PID/status``, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


async def settled_rss(pid: int, *, seconds: float = 8.0) -> float:
    """VmRSS once it stops moving (two reads 0.5 s apart within 0.1 MB), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    last = proc_mb(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = proc_mb(pid)
        if abs(now - last) < 0.1:
            return now
        last = now
    return last


async def api(http: aiohttp.ClientSession, node: MemNode, method: str, path: str,
              body: dict[str, object] | None = None) -> dict[str, object]:
    """An admin API call on ``node``; its JSON answer (raises on an error status)."""
    async with http.request(method, f"{node.url}{path}", json=body,
                            headers={"Authorization": f"Bearer {node.admin_token}"}) as answer:
        answer.raise_for_status()
        result: dict[str, object] = await answer.json()
        return result


def reset_peak(pid: int) -> None:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0, own processes)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class CgroupUnavailableError(RuntimeError):
    """No memory cgroup can be created here; the message says what is missing."""


class MemoryCgroup:
    """A child memory cgroup with a hard limit, made next to this process's own one.

    cgroup v1 (``/sys/fs/cgroup/memory``: ``memory.limit_in_bytes``, OOM kills counted in
    ``memory.oom_control``) or v2 (``memory.max``, ``memory.events``). Needs write access to
    the parent cgroup (root, or a delegated subtree).
    """

    def __init__(self, path: Path, *, v2: bool) -> None:
        self.path = path
        self.v2 = v2

    @classmethod
    def create(cls, limit_bytes: int) -> MemoryCgroup:
        """Make a fresh child cgroup capped at ``limit_bytes``; raise if impossible here."""
        v1_root = CGROUP_ROOT / "memory"
        parent, v2 = (_own_cgroup(v1_root, v2=False), False) if (
            v1_root / "memory.limit_in_bytes").exists() else (
            _own_cgroup(CGROUP_ROOT, v2=True), True)
        if v2:
            _delegate_memory(parent)
        path = parent / f"meshnode-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
        except OSError as error:
            raise CgroupUnavailableError(
                f"cannot create a memory cgroup under {parent} as uid {os.getuid()}: {error}"
            ) from error
        group = cls(path, v2=v2)
        try:
            group._write("memory.max" if v2 else "memory.limit_in_bytes", str(limit_bytes))
        except OSError as error:
            path.rmdir()
            raise CgroupUnavailableError(f"cannot set a memory limit in {path}: {error}"
                                         ) from error
        if not v2:  # no swap here, but a machine with swap must not escape the budget by it
            with contextlib.suppress(OSError):  # swap accounting off: nothing to cap
                group._write("memory.memsw.limit_in_bytes", str(limit_bytes))
        return group

    def _write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    def enter(self) -> None:
        """Move the calling process into the cgroup (used as a ``preexec_fn``)."""
        self._write("cgroup.procs", "0")

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the limit."""
        name, key = ("memory.events", "oom_kill") if self.v2 else ("memory.oom_control",
                                                                    "oom_kill")
        for line in (self.path / name).read_text().splitlines():
            if line.startswith(f"{key} "):
                return int(line.split()[1])
        raise CgroupUnavailableError(f"{self.path / name} has no {key} counter")

    def peak_mb(self) -> float:
        """The most memory (RSS and page cache) the cgroup has held, in MB."""
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        path = self.path / name
        return int(path.read_text()) / 2**20 if path.exists() else float("nan")

    def usage(self) -> str:
        """Memory the cgroup holds now: total, page cache, dirty and under writeback (MB)."""
        if self.v2:
            stat = dict(line.split() for line in (self.path / "memory.stat").read_text()
                        .splitlines())
            total = int((self.path / "memory.current").read_text())
            cache, dirty, writeback = stat["file"], stat["file_dirty"], stat["file_writeback"]
        else:
            stat = dict(line.split() for line in (self.path / "memory.stat").read_text()
                        .splitlines())
            total = int((self.path / "memory.usage_in_bytes").read_text())
            cache, dirty, writeback = stat["cache"], stat["dirty"], stat["writeback"]
        return (f"cgroup {total / 2**20:.0f} MB (page cache {int(cache) / 2**20:.0f}, dirty"
                f" {int(dirty) / 2**20:.1f}, writeback {int(writeback) / 2**20:.1f})")

    def remove(self) -> None:
        """Delete the cgroup (its processes must have ended)."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:  # the last task is still being reaped
                time.sleep(0.1)
        self.path.rmdir()


def _delegate_memory(parent: Path) -> None:
    """cgroup v2: the memory controller must be enabled for ``parent``'s children."""
    control = parent / "cgroup.subtree_control"
    try:
        if "memory" not in control.read_text().split():
            control.write_text("+memory")
    except OSError as error:  # e.g. EBUSY: processes in the parent ("no internal processes")
        raise CgroupUnavailableError(
            f"the memory controller is not delegated to {parent} (uid {os.getuid()}): {error};"
            " run as root in a cgroup of its own, or under systemd-run --scope -p Delegate=yes"
        ) from error


def _own_cgroup(root: Path, *, v2: bool) -> Path:
    """This process's cgroup in the hierarchy mounted at ``root``."""
    if not root.is_dir():
        raise CgroupUnavailableError(f"no memory cgroup hierarchy at {root}")
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, relative = line.split(":", 2)
        if (v2 and number == "0") or (not v2 and "memory" in controllers.split(",")):
            return root / relative.lstrip("/")
    raise CgroupUnavailableError("this process is in no memory cgroup (/proc/self/cgroup)")


@dataclass
class MemNode:
    """A node's data directory and the credentials a load generator needs."""

    config: Config
    token: str = ""
    admin_token: str = ""
    session: str = ""
    listing_ids: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The node's base URL on 127.0.0.1."""
        return f"http://127.0.0.1:{self.config.port}"

    @property
    def log_path(self) -> Path:
        """Where ``start_node`` writes the node's log (next to its data directory)."""
        return self.config.data_dir.with_suffix(".log")


async def setup_node(data_dir: Path, port: int, *, handle: str = "mem",
                     discovery: bool = False) -> MemNode:
    """Initialise a node with no per-member hourly limits, an admin ``alice`` (API token and
    browser session). mDNS off unless ``discovery`` (it would find other nodes on this host)."""
    config = init_node(Config(
        data_dir=data_dir, name=f"Mem {handle}", handle=handle, port=port,
        public_url=f"http://127.0.0.1:{port}", limits=LimitsConfig(0, 0, 0),
        discovery_policy="auto" if discovery else "off"))
    ctx = await NodeContext.open(config)
    try:
        alice = await members.add_member(ctx, username="alice", password=None, is_admin=True)
        token = (await members.create_token(ctx, "alice")).secret
        session = (await sessions.open_session(ctx, alice)).secret
    finally:
        await ctx.close()
    return MemNode(config, token=token, admin_token=token, session=session)


def start_node(node: MemNode, *, cgroup: MemoryCgroup | None = None,
               argv: list[str] | None = None) -> subprocess.Popen[bytes]:
    """``meshnode run`` as a subprocess (inside ``cgroup`` from its first instruction)."""
    preexec: Callable[[], None] | None = cgroup.enter if cgroup else None
    command = argv or [sys.executable, "-m", "meshnode.cli", "--log-level", "WARNING", "run",
                       "--data-dir", str(node.config.data_dir)]
    # The log goes to a file: a pipe nobody drains fills up (64 KiB) and then blocks the
    # node in write(), which looks exactly like a hung node.
    with node.log_path.open("ab") as log:
        return subprocess.Popen(command, cwd=REPO, preexec_fn=preexec,
                                env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.DEVNULL, stderr=log)


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Wait for ``/healthz`` to answer 200; raise if the process ends first."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"node exited with {proc.returncode}")
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("node did not answer /healthz in time")


def worst_png() -> bytes:
    """The largest RGBA PNG the default decode budget accepts (the costliest to decode)."""
    from PIL import Image  # only the load generator needs Pillow

    low, high = 1600, 6000
    while low < high:
        mid = (low + high + 1) // 2
        if decode_cost(mid, mid, "RGBA", alpha=True) <= DEFAULT_DECODE_BUDGET:
            low = mid
        else:
            high = mid - 1
    out = io.BytesIO()
    Image.new("RGBA", (low, low), (10, 200, 30, 128)).save(out, format="PNG")
    return out.getvalue()


def small_jpeg(seed: int) -> bytes:
    """A 1200×900 photo-sized JPEG (noise, so it does not compress away)."""
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (1200, 900), secrets.token_bytes(1200 * 900 * 3)).save(
        out, format="JPEG", quality=80 + seed % 10)
    return out.getvalue()


@dataclass
class Tally:
    """Statuses of every request a load generator sent."""

    statuses: dict[int, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)

    def record(self, what: str, status: int) -> None:
        """Count ``status``; anything but 2xx or a 429/503 refusal is kept as unexpected."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not (200 <= status < 300 or status in REFUSALS):
            self.unexpected.append(f"{what}: {status}")

    @property
    def total(self) -> int:
        """Requests answered."""
        return sum(self.statuses.values())


def listing_body(number: int) -> dict[str, object]:
    """A small listing to publish through the API."""
    word = WORDS[number % len(WORDS)]
    return {"kind": "offer", "category": "give", "title": f"{word.capitalize()} n°{number}",
            "description": f"Charge mémoire : {word} {' '.join(WORDS[:number % 5])}",
            "price": {"mode": "free"}, "location": {"name": "Quai du Canal"}}


async def create_listing(http: aiohttp.ClientSession, node: MemNode, number: int,
                         tally: Tally) -> str | None:
    """Publish one listing as alice; its id, or None if the node refused."""
    async with http.post(f"{node.url}/api/v1/listings", json=listing_body(number),
                         headers={"Authorization": f"Bearer {node.token}"}) as response:
        tally.record("POST /api/v1/listings", response.status)
        if response.status != 201:
            return None
        listing_id = str((await response.json())["id"])
        node.listing_ids.append(listing_id)
        return listing_id


async def upload_image(http: aiohttp.ClientSession, node: MemNode, data: bytes, number: int,
                       tally: Tally) -> int:
    """Upload ``data`` as the image of a new listing; the upload's status."""
    listing_id = await create_listing(http, node, number, tally)
    if listing_id is None:
        return 0
    form = aiohttp.FormData()
    form.add_field("image", data, filename="photo", content_type="application/octet-stream")
    async with http.post(f"{node.url}/api/v1/listings/{listing_id}/images", data=form,
                         headers={"Authorization": f"Bearer {node.token}"}) as response:
        await response.read()
        tally.record("POST …/images", response.status)
        return response.status


def page_paths(node: MemNode, number: int) -> tuple[list[str], list[str]]:
    """(anonymous paths, member paths) for one round of page views."""
    word = WORDS[number % len(WORDS)]
    listing = [f"/listings/{node.listing_ids[-1 - number % len(node.listing_ids)]}"] if (
        node.listing_ids) else []
    anonymous = ["/", f"/search?q={word}", "/users/alice",
                 *listing]
    member = ["/", f"/search?q={word}&kind=offer", "/wallet", "/my/deals", "/my/listings",
              "/notifications", "/messages", "/post", *listing]
    return anonymous, member


async def view_pages(http: aiohttp.ClientSession, node: MemNode, number: int,
                     tally: Tally) -> int:
    """One round of anonymous and member page views; how many pages were served."""
    anonymous, member = page_paths(node, number)
    html = {"Accept": "text/html", "Accept-Language": "fr" if number % 2 else "en"}
    cookie = {**html, "Cookie": f"mn_session={node.session}"}
    for path, headers in [*((p, html) for p in anonymous), *((p, cookie) for p in member)]:
        started = time.monotonic()
        try:
            async with http.get(f"{node.url}{path}", headers=headers,
                                allow_redirects=False) as response:
                await response.read()
                tally.record(f"GET {path}", response.status)
        except TimeoutError:
            tally.unexpected.append(f"GET {path}: no answer in {time.monotonic() - started:.0f} s"
                                    f" (at {time.strftime('%H:%M:%S')})")
    return len(anonymous) + len(member)


async def api_search(http: aiohttp.ClientSession, node: MemNode, number: int,
                     tally: Tally) -> None:
    """One search through the JSON API."""
    params = {"q": WORDS[number % len(WORDS)]}
    async with http.get(f"{node.url}/api/v1/listings", params=params,
                        headers={"Authorization": f"Bearer {node.token}"}) as response:
        await response.read()
        tally.record("GET /api/v1/listings", response.status)


async def mixed_round(http: aiohttp.ClientSession, node: MemNode, number: int, tally: Tally,
                      *, image: bytes | None = None, upload: bool = True) -> None:
    """One round of mixed load: a listing, a search, page views, and (unless not ``upload``)
    an upload of ``image`` (a photo-sized JPEG when None)."""
    await create_listing(http, node, number, tally)
    await api_search(http, node, number, tally)
    await view_pages(http, node, number, tally)
    if upload:
        await upload_image(http, node, image if image is not None else small_jpeg(number), number,
                       tally)
