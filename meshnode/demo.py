"""``meshnode demo``: several real nodes on 127.0.0.1 that find each other over mDNS.

Each node is a separate ``meshnode run`` process with its own data directory, port and
keys, bound to 127.0.0.1 with discovery on the loopback (``discovery.interfaces``), so the
nodes discover, verify and peer with each other exactly as on a LAN: no URL is configured
by hand. On first run every node is seeded with a few members and listings (French and
English, dates computed from now); a re-run with the same directory resumes (same keys,
same data, no re-seeding).

The demo logins use fixed, printed passwords: fine for nodes that only listen on
127.0.0.1, never for a real community.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from meshnode.config import Config, ConfigError, load_config
from meshnode.errors import NotFoundError
from meshnode.federation.tasks import wait_event
from meshnode.protocol.timefmt import format_utc
from meshnode.services import listings, members
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node

log = logging.getLogger(__name__)

SEEDED_MARKER = "demo-seeded"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
MAX_NODES = 9

Listing = dict[str, Any]
ListingFactory = Callable[[datetime], Listing]


@dataclass(frozen=True)
class DemoMember:
    """A seeded login."""

    username: str
    display_name: str
    password: str
    admin: bool = False


@dataclass(frozen=True)
class DemoCommunity:
    """What one demo node is: its name, language, members and listings (by member)."""

    name: str
    handle: str
    locale: str
    members: tuple[DemoMember, ...]
    listings: tuple[tuple[str, ListingFactory], ...]


def next_saturday(now: datetime, tz: ZoneInfo, hour: int = 9) -> datetime:
    """The next Saturday at ``hour`` local time strictly after ``now`` (at least 2 h away)."""
    local = now.astimezone(tz)
    days = (5 - local.weekday()) % 7
    when = local.replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    if when - now < timedelta(hours=2):
        when += timedelta(days=7)
    return when


def _at(now: datetime, days: int, hour: int, tz: ZoneInfo) -> str:
    local = (now.astimezone(tz) + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )
    return format_utc(local)


PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")


def _drill(now: datetime) -> Listing:
    return {
        "kind": "offer", "category": "lend", "title": "Perceuse-visseuse à prêter",
        "description": "Bosch 18 V avec deux batteries et un coffret de mèches bois/béton. "
                       "À récupérer au 12 quai du Canal, le soir après 18 h.",
        "price": {"mode": "free"},
        "location": {"name": "Quai du Canal", "lat": 45.7640, "lon": 4.8357},
        "details": {"deposit": "20.00", "available_from": format_utc(now),
                    "available_until": _at(now, 30, 20, PARIS)},
    }


def _ride_lyon(now: datetime) -> Listing:
    return {
        "kind": "offer", "category": "ride", "title": "Covoiturage vers Lyon samedi matin",
        "description": "Départ de la place du marché, retour dimanche soir. "
                       "Trois places, un vélo pliant tient dans le coffre.",
        "price": {"mode": "amount", "amount": "4.50"},
        "location": {"name": "Place du marché", "lat": 45.7578, "lon": 4.8320},
        "details": {"from": "Place du marché", "to": "Lyon Part-Dieu",
                    "departure": format_utc(next_saturday(now, PARIS)), "seats": 3},
    }


def _lasagne(now: datetime) -> Listing:
    return {
        "kind": "offer", "category": "meal", "title": "Lasagnes maison, 6 parts",
        "description": "Lasagnes aux légumes du jardin (courgettes, aubergines, ricotta). "
                       "Apportez votre boîte !",
        "price": {"mode": "amount", "amount": "3.00"},
        "location": {"name": "Jardins de la Croix-Rousse", "lat": 45.7745, "lon": 4.8320},
        "details": {"portions": 6, "pickup_time": _at(now, 1, 19, PARIS),
                    "allergens": "gluten, lait"},
    }


def _apples(now: datetime) -> Listing:
    return {
        "kind": "offer", "category": "group-buy", "title": "Achat groupé de pommes du Pilat",
        "description": "Commande directe au verger : reinettes et golden, cagettes de 10 kg. "
                       "La commande part dès 40 kg réservés.",
        "price": {"mode": "amount", "amount": "1.80"},
        "location": {"name": "Jardins de la Croix-Rousse", "lat": 45.7745, "lon": 4.8320},
        "details": {"target_quantity": "100", "threshold": "40", "unit": "kg",
                    "deadline": _at(now, 10, 18, PARIS)},
    }


def _shelf_help(now: datetime) -> Listing:
    del now
    return {
        "kind": "request", "category": "service", "title": "Cherche aide pour monter une étagère",
        "description": "Une heure de coup de main samedi, je fournis le café et les outils.",
        "price": {"mode": "amount", "amount": "10.00"},
        "details": {"skill": "bricolage", "hours": "1"},
    }


def _ladder(now: datetime) -> Listing:
    return {
        "kind": "offer", "category": "lend", "title": "Ladder to lend (3 m, aluminium)",
        "description": "Folding ladder, fine for gutters and fruit picking. "
                       "Pick it up at the workshop on Riverside Lane.",
        "price": {"mode": "free"},
        "location": {"name": "Riverside Makers workshop", "lat": 51.5055, "lon": -0.0754},
        "details": {"available_from": format_utc(now),
                    "available_until": _at(now, 21, 18, LONDON)},
    }


def _bike_repair(now: datetime) -> Listing:
    del now
    return {
        "kind": "offer", "category": "service", "title": "Bike repair evening at the workshop",
        "description": "Bring your bike: brakes, gears, punctures. Tools and tea provided.",
        "price": {"mode": "amount", "amount": "5.00", "period": "hour"},
        "location": {"name": "Riverside Makers workshop", "lat": 51.5055, "lon": -0.0754},
        "details": {"skill": "bike repair", "hours": "2"},
    }


def _sourdough(now: datetime) -> Listing:
    del now
    return {
        "kind": "offer", "category": "give", "title": "Sourdough starter, free to a good home",
        "description": "Five-year-old rye starter, fed daily. Bring a clean jar.",
        "price": {"mode": "free"},
    }


def _generic(index: int) -> tuple[tuple[str, ListingFactory], ...]:
    def courgettes(now: datetime) -> Listing:
        del now
        return {
            "kind": "offer", "category": "produce",
            "title": f"Courgettes du potager du quartier {index}",
            "description": "Récoltées ce matin, sans traitement.",
            "price": {"mode": "amount", "amount": "2.00"},
            "details": {"quantity": "5", "unit": "kg"},
        }

    def jigsaw(now: datetime) -> Listing:
        del now
        return {
            "kind": "offer", "category": "swap", "title": f"Jigsaw puzzles to swap (area {index})",
            "description": "Three 1000-piece puzzles, all pieces counted.",
            "price": {"mode": "swap"}, "details": {"wanted": "board games"},
        }

    return (("admin", courgettes), ("admin", jigsaw))


COMMUNITIES: tuple[DemoCommunity, ...] = (
    DemoCommunity(
        "Les Voisins du Canal", "canal", "fr",
        (DemoMember("camille", "Camille Martin", "canal-demo-1", admin=True),
         DemoMember("yanis", "Yanis Benali", "canal-demo-2")),
        (("yanis", _drill), ("camille", _ride_lyon)),
    ),
    DemoCommunity(
        "Jardins de la Croix-Rousse", "croixrousse", "fr",
        (DemoMember("lea", "Léa Dubois", "jardins-demo-1", admin=True),
         DemoMember("marc", "Marc Roussel", "jardins-demo-2")),
        (("lea", _lasagne), ("marc", _apples), ("marc", _shelf_help)),
    ),
    DemoCommunity(
        "Riverside Makers", "riverside", "en",
        (DemoMember("sam", "Sam Okafor", "riverside-demo-1", admin=True),
         DemoMember("priya", "Priya Shah", "riverside-demo-2")),
        (("priya", _ladder), ("sam", _bike_repair), ("priya", _sourdough)),
    ),
)


def community(index: int) -> DemoCommunity:
    """The demo community of node ``index`` (0-based): three named ones, then generic ones."""
    if index < len(COMMUNITIES):
        return COMMUNITIES[index]
    number = index + 1
    return DemoCommunity(
        f"Quartier {number}", f"quartier{number}", "fr" if number % 2 else "en",
        (DemoMember("admin", f"Admin quartier {number}", f"quartier-demo-{number}", admin=True),),
        _generic(number),
    )


def listing_titles(index: int) -> list[str]:
    """The titles node ``index`` is seeded with (for tests and the printed summary)."""
    now = datetime.now().astimezone()
    return [factory(now)["title"] for _, factory in community(index).listings]


@dataclass
class DemoNode:
    """One node of the demo: its directory, config and (once started) its process."""

    index: int
    community: DemoCommunity
    config: Config
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.config.base_url


def node_dir(data_dir: Path, index: int) -> Path:
    """Where node ``index`` keeps its data."""
    return data_dir / f"node{index + 1}"


def prepare_node(data_dir: Path, index: int, port: int) -> tuple[Config, bool]:
    """Create node ``index`` if needed; returns its config and whether it was created now."""
    folder = node_dir(data_dir, index)
    if (folder / "config.toml").exists():
        return load_config(folder), False
    spec = community(index)
    config = init_node(Config(
        data_dir=folder, name=spec.name, handle=spec.handle,
        public_url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port,
        default_locale=spec.locale, timezone="Europe/London" if spec.locale == "en"
        else "Europe/Paris", synchronous="normal", discovery_policy="auto",
        discovery_interfaces=("127.0.0.1",),
    ))
    return config, True


async def seed_node(config: Config, spec: DemoCommunity) -> int:
    """Add the demo members and listings unless already done; returns listings created."""
    marker = config.data_dir / SEEDED_MARKER
    if marker.exists():
        return 0
    ctx = await NodeContext.open(config)
    try:
        authors = {}
        for person in spec.members:
            try:
                row = await members.get_member(ctx, person.username)
            except NotFoundError:
                row = await members.add_member(
                    ctx, username=person.username, password=person.password,
                    is_admin=person.admin, display_name=person.display_name,
                )
            authors[person.username] = row
        now = ctx.clock()
        for username, factory in spec.listings:
            await listings.create_listing(ctx, authors[username], factory(now))
    finally:
        await ctx.close()
    marker.write_text("seeded\n", encoding="utf-8")
    return len(spec.listings)


def child_environment() -> dict[str, str]:
    """The environment of a node process: it imports the very ``meshnode`` the demo runs.

    Children are started with ``python -P`` so the current directory (which may hold an
    unrelated ``meshnode/`` folder, e.g. a checkout's parent) is never put on ``sys.path``;
    the folder that holds this package goes first on ``PYTHONPATH`` instead.
    """
    package_root = str(Path(__file__).resolve().parent.parent)
    inherited = os.environ.get("PYTHONPATH", "")
    python_path = os.pathsep.join(p for p in (package_root, inherited) if p)
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path}


def _spawn(node: DemoNode, log_level: str) -> subprocess.Popen[bytes]:
    # A new session: the terminal's Ctrl-C reaches the demo only, which then stops every
    # node with exactly one SIGTERM (a second signal during shutdown could kill a node).
    return subprocess.Popen(  # noqa: S603 (fixed argv: this interpreter, our own module)
        [sys.executable, "-P", "-m", "meshnode.cli", "--log-level", log_level, "run",
         "--data-dir", str(node.config.data_dir)],
        stdin=subprocess.DEVNULL, start_new_session=True, env=child_environment(),
    )


async def _healthy(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _wait_started(nodes: list[DemoNode], stop: asyncio.Event) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(nodes)
    async with aiohttp.ClientSession() as session:
        await _poll_started(session, pending, deadline, stop)


async def _poll_started(
    session: aiohttp.ClientSession, pending: list[DemoNode], deadline: float, stop: asyncio.Event
) -> None:
    while pending and not stop.is_set():
        for node in list(pending):
            assert node.process is not None
            if node.process.poll() is not None:
                raise ConfigError(f"node {node.community.name!r} exited during start-up "
                                  f"(code {node.process.returncode})")
            if await _healthy(session, node.url):
                pending.remove(node)
        if time.monotonic() > deadline:
            raise ConfigError("nodes did not start within "
                              f"{START_TIMEOUT:.0f} s: {', '.join(n.url for n in pending)}")
        if pending:
            await wait_event(stop, 0.1)


def _print_summary(nodes: list[DemoNode], data_dir: Path, resumed: bool) -> None:
    print()
    print(f"meshnode demo: {len(nodes)} nodes on 127.0.0.1 "
          f"({'resumed' if resumed else 'new'}, data in {data_dir})")
    print("They find each other over mDNS and share listings within seconds; "
          "no URL to configure.")
    for node in nodes:
        print()
        print(f"  {node.community.name}  ({node.community.locale})")
        print(f"    {node.url}/")
        for person in node.community.members:
            role = "admin" if person.admin else "member"
            print(f"    login {person.username} / {person.password}  ({role})")
    print()
    print("Open a node's home page: the other communities' listings appear there. "
          "Admins see them under Admin > Neighbours.")
    print("Press Ctrl-C to stop all nodes; run the same command again to resume.")
    print(flush=True)


def _stop_all(nodes: list[DemoNode]) -> bool:
    """SIGTERM every running node, wait, SIGKILL stragglers; True if all exited cleanly."""
    running = [n for n in nodes if n.process is not None]
    for node in running:
        assert node.process is not None
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)
    clean = True
    deadline = time.monotonic() + STOP_TIMEOUT
    for node in running:
        assert node.process is not None
        try:
            code = node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            node.process.kill()
            code = node.process.wait()
        if code != 0:
            clean = False
            print(f"meshnode demo: {node.community.name!r} exited with code {code}",
                  file=sys.stderr)
    return clean


def run_demo(count: int, base_port: int, data_dir: Path, log_level: str = "WARNING") -> int:
    """Create or resume ``count`` nodes, run them until SIGINT/SIGTERM, then stop them all."""
    if not 1 <= count <= MAX_NODES:
        raise ConfigError(f"--nodes must be between 1 and {MAX_NODES}")
    if not 1024 <= base_port <= 65535 - count:
        raise ConfigError("--base-port must leave room for every node below 65536")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    nodes: list[DemoNode] = []
    resumed = True
    for index in range(count):
        config, created = prepare_node(data_dir, index, base_port + index)
        resumed = resumed and not created
        if not created and config.port != base_port + index:
            log.warning("%s keeps its port %d from the first run (its URL is its identity)",
                        config.name, config.port)
        nodes.append(DemoNode(index, community(index), config))
    return asyncio.run(_run(nodes, data_dir, resumed, log_level))


async def _run(nodes: list[DemoNode], data_dir: Path, resumed: bool, log_level: str) -> int:
    for node in nodes:
        await seed_node(node.config, node.community)
    stop = asyncio.Event()
    failed = False
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for node in nodes:
            node.process = _spawn(node, log_level)
        await _wait_started(nodes, stop)
        if not stop.is_set():
            _print_summary(nodes, data_dir, resumed)
        while not stop.is_set():
            crashed = [n for n in nodes if n.process is not None and n.process.poll() is not None]
            if crashed:
                names = ", ".join(n.community.name for n in crashed)
                print(f"meshnode demo: node stopped unexpectedly: {names}", file=sys.stderr)
                failed = True
                break
            await wait_event(stop, 0.5)
        print("meshnode demo: stopping all nodes...", flush=True)
    finally:
        clean = await asyncio.to_thread(_stop_all, nodes)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("meshnode demo: stopped" + ("" if clean else " (not cleanly)"), flush=True)
    return 0 if clean and not failed else 1
