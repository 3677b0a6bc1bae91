"""The layer rules of the README's "Architecture" section, checked on the source itself.

Every module under ``meshnode/`` is parsed with ``ast`` (imports inside functions and
``TYPE_CHECKING`` blocks included) and each import of a ``meshnode`` module is checked against
``LAYERS``: a module may import its own layer and the layers below it, never above; the HTTP,
mDNS, database and page libraries only from the layer in ``LIBRARY_FLOOR`` up. Three more rules
keep the store behind its own door:

- no SQL above ``meshnode/store/`` (no ``execute*`` calls, no SQL text, no ``connect``);
- ``web/`` and the entry points take from the store only its types (row classes, filters,
  errors), never a query function or a store module: they call a service use case;
- ``web/`` and the entry points never touch ``ctx.store.reader`` or ``ctx.store.transaction``.

This table is the one written statement of the rules; ruff (``pyproject.toml``) repeats the
part it can express for the whole package (see the README).
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Bottom to top: a module may import modules of its own layer and of the layers before it.
# A module belongs to the layer of its longest matching prefix.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Pure code, no I/O (``meshnode`` itself, which only holds ``__version__``, sits here too).
    ("protocol", ("meshnode.protocol",)),
    # Typed service errors, the config file, key files, the URL scheme: used by every layer.
    ("foundation", ("meshnode.errors", "meshnode.config", "meshnode.keys", "meshnode.urls")),
    ("store", ("meshnode.store",)),
    ("services", ("meshnode.services",)),
    ("federation", ("meshnode.federation",)),
    ("web", ("meshnode.web",)),
    # What a process starts from: nothing else may import these.
    ("entry", ("meshnode.app", "meshnode.cli", "meshnode.cli_iou", "meshnode.cli_peer",
               "meshnode.cli_support", "meshnode.demo", "meshnode.serve")),
)
ROOT_LAYER = "protocol"  # of ``meshnode/__init__.py``, matched exactly (not as a prefix)
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}
# The lowest layer that may import each of these libraries (the HTTP server and client, mDNS,
# the database drivers, page rendering). ``tests/protocol/test_purity.py`` adds asyncio, socket
# and the clock for ``protocol/``.
LIBRARY_FLOOR = {
    "sqlite3": "store", "aiosqlite": "store",
    "aiohttp": "federation", "zeroconf": "federation",
    "jinja2": "web", "aiohttp_jinja2": "web", "babel": "web", "segno": "web",
}
STORE_DOORKEEPERS = ("store", "services", "federation")  # layers that may run store queries
SQL_CALLS = frozenset({"execute", "executemany", "executescript", "execute_fetchall",
                       "execute_insert"})
SQL_TEXT = re.compile(
    r"\s*(SELECT\b.*\bFROM\b|INSERT\s+(OR\s+\w+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
    r"|(CREATE|DROP)\s+(TABLE|INDEX|TRIGGER|VIEW)\b|ALTER\s+TABLE\b|PRAGMA\s|SAVEPOINT\s"
    r"|ROLLBACK\b|RELEASE\s|BEGIN\b|COMMIT\b)", re.DOTALL)


@dataclass(frozen=True)
class Offence:
    """One broken rule, printed as ``file:line what``."""

    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.what}"


def layer_of(module: str) -> str | None:
    """The layer of a ``meshnode`` module (None outside the package), by longest prefix."""
    if module == "meshnode":
        return ROOT_LAYER
    best: tuple[int, str] | None = None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > best[0]):
                best = (len(prefix), name)
    return best[1] if best else None


def module_name(root: Path, path: Path) -> str:
    """Dotted name of a source file under ``root`` (the folder holding ``meshnode/``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(root: Path, dotted: str) -> bool:
    """True if ``dotted`` names a module under ``root`` or in the real package."""
    for folder in (root, REPO):
        base = folder.joinpath(*dotted.split("."))
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


def imported(root: Path, module: str, is_package: bool,
             node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str | None]]:
    """(module, name) pairs an import statement reaches; name is set for ``from m import n``
    when ``m.n`` is not itself a module."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    for alias in node.names:
        dotted = f"{base}.{alias.name}"
        yield (dotted, None) if _is_module(root, dotted) else (base, alias.name)


def _store_item_is_a_type(module: str, name: str | None) -> bool:
    if name is None:
        return False
    return isinstance(getattr(importlib.import_module(module), name, None), type)


def import_offences(root: Path, path: Path, tree: ast.Module) -> Iterator[Offence]:
    """Imports against the layer table, and store functions reached from above services."""
    module = module_name(root, path)
    mine = layer_of(module)
    rel = path.relative_to(root).as_posix()
    if mine is None:
        yield Offence(rel, 1, f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target, name in imported(root, module, path.name == "__init__.py", node):
            theirs = layer_of(target)
            shown = f"{target}.{name}" if name else target
            floor = LIBRARY_FLOOR.get(target.split(".")[0])
            if theirs is None and floor is not None and RANK[floor] > RANK[mine]:
                yield Offence(rel, node.lineno, f"imports {shown} (allowed from {floor} up)")
            if theirs is None:
                continue
            if RANK[theirs] > RANK[mine]:
                yield Offence(rel, node.lineno, f"imports {shown} ({mine} -> {theirs})")
            elif (theirs == "store" and mine not in STORE_DOORKEEPERS
                  and not _store_item_is_a_type(target, name)):
                yield Offence(rel, node.lineno, f"imports {shown} (a {mine} module may take "
                              "only types from the store: call a service)")


def _is_store_handle(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in {"reader", "transaction"}
            and isinstance(node.value, ast.Attribute) and node.value.attr == "store")


def sql_offences(root: Path, path: Path, tree: ast.Module) -> Iterator[Offence]:
    """SQL statements, SQL text and database connections outside ``meshnode/store/``."""
    mine = layer_of(module_name(root, path))
    if mine == "store":
        return
    rel = path.relative_to(root).as_posix()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in SQL_CALLS or (
                    node.func.attr == "connect" and isinstance(owner, ast.Name)
                    and owner.id in {"sqlite3", "aiosqlite"}):
                yield Offence(rel, node.lineno, f"runs SQL: {ast.unparse(node.func)}(…)")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and SQL_TEXT.match(node.value)):
            yield Offence(rel, node.lineno, f"holds SQL text {node.value[:40]!r}")
        elif mine not in STORE_DOORKEEPERS and _is_store_handle(node):
            yield Offence(rel, node.lineno, f"uses {ast.unparse(node)}: call a service")


def check_tree(root: Path) -> list[Offence]:
    """Every offence in the ``meshnode`` package under ``root``, in file order."""
    found: list[Offence] = []
    for path in sorted((root / "meshnode").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offences = [*import_offences(root, path, tree), *sql_offences(root, path, tree)]
        found += sorted(offences, key=lambda offence: offence.line)
    return found


def _report(offences: list[Offence]) -> str:
    return "layer rules broken (README, Architecture):\n" + "\n".join(map(str, offences))


def test_layers__the_package_keeps_every_rule() -> None:
    # Given the package as it is, When every module is parsed, Then nothing breaks a rule
    offences = check_tree(REPO)
    assert offences == [], _report(offences)


def test_layers__every_module_belongs_to_a_layer() -> None:
    modules = [module_name(REPO, p) for p in (REPO / "meshnode").rglob("*.py")]
    assert len(modules) > 100
    assert [m for m in modules if layer_of(m) is None] == []


def _synthetic(tmp_path: Path, relative: str, source: str) -> list[str]:
    """Offences of one synthetic module written at ``relative`` under ``tmp_path`` (module
    lookups fall back to the real package)."""
    target = tmp_path / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in target.relative_to(tmp_path).parents:
        if parent != Path("."):
            (tmp_path / parent / "__init__.py").touch()
    target.write_text(source, encoding="utf-8")
    tree = ast.parse(source)
    return [str(o) for o in (*import_offences(tmp_path, target, tree),
                             *sql_offences(tmp_path, target, tree))]


def test_layers__an_upward_import_inside_a_function_is_reported(tmp_path: Path) -> None:
    # Given a federation module importing web lazily, and a store module importing services
    # under TYPE_CHECKING
    federation = _synthetic(tmp_path, "meshnode/federation/bad.py", (
        "def handler():\n"
        "    from meshnode.web.appkeys import CONTEXT\n"
        "    return CONTEXT\n"))
    store = _synthetic(tmp_path, "meshnode/store/bad.py", (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import meshnode.services.ledger\n"))
    # Then both are named with file and line
    assert federation == [
        "meshnode/federation/bad.py:2 imports meshnode.web.appkeys.CONTEXT (federation -> web)"]
    assert store == ["meshnode/store/bad.py:3 imports meshnode.services.ledger (store -> services)"]


def test_layers__importing_the_app_or_cli_from_below_is_reported(tmp_path: Path) -> None:
    found = _synthetic(tmp_path, "meshnode/web/bad.py", (
        "from meshnode import cli\n"
        "from meshnode.app import create_app\n"))
    assert found == ["meshnode/web/bad.py:1 imports meshnode.cli (web -> entry)",
                     "meshnode/web/bad.py:2 imports meshnode.app.create_app (web -> entry)"]


def test_layers__a_relative_upward_import_is_reported(tmp_path: Path) -> None:
    found = _synthetic(tmp_path, "meshnode/services/bad.py", (
        "from ..web import appkeys\n"
        "from ..web.bodies import read_json\n"))
    assert found == [
        "meshnode/services/bad.py:1 imports meshnode.web.appkeys (services -> web)",
        "meshnode/services/bad.py:2 imports meshnode.web.bodies.read_json (services -> web)"]


def test_layers__a_web_handler_calling_store_queries_is_reported(tmp_path: Path) -> None:
    # Given a page that imports a query module, a query function, and reads ctx.store.reader
    found = _synthetic(tmp_path, "meshnode/web/pages/bad.py", (
        "from meshnode.store import deals as q\n"
        "from meshnode.store.outbox import delivery_summary\n"
        "from meshnode.store.deals import DealRow\n"
        "async def page(ctx):\n"
        "    return await q.events(ctx.store.reader, 'x')\n"))
    # Then the query imports and the reader are reported, the row type is allowed
    assert found == [
        "meshnode/web/pages/bad.py:1 imports meshnode.store.deals (a web module may take only "
        "types from the store: call a service)",
        "meshnode/web/pages/bad.py:2 imports meshnode.store.outbox.delivery_summary (a web "
        "module may take only types from the store: call a service)",
        "meshnode/web/pages/bad.py:5 uses ctx.store.reader: call a service",
    ]


@pytest.mark.parametrize("statement", [
    "await tx.execute('DELETE FROM peers WHERE origin = ?', (o,))",
    "await tx.execute(QUERY)",
    "conn = sqlite3.connect(path)",
])
def test_layers__sql_above_the_store_is_reported(tmp_path: Path, statement: str) -> None:
    found = _synthetic(tmp_path, "meshnode/federation/bad.py",
                       f"async def f(tx, o, path):\n    {statement}\n")
    assert found
    assert all(line.startswith("meshnode/federation/bad.py:2 ") for line in found)


def test_layers__sql_text_above_the_store_is_reported(tmp_path: Path) -> None:
    found = _synthetic(tmp_path, "meshnode/services/bad.py",
                       'STATEMENT = "UPDATE listings SET hidden = 1"\n')
    assert found == ["meshnode/services/bad.py:1 holds SQL text 'UPDATE listings SET hidden = 1'"]


def test_layers__sql_inside_the_store_is_allowed(tmp_path: Path) -> None:
    found = _synthetic(tmp_path, "meshnode/store/fine.py", (
        "async def f(tx):\n"
        "    await tx.execute('DELETE FROM peers')\n"))
    assert found == []


def test_layers__a_library_below_its_floor_is_reported(tmp_path: Path) -> None:
    # Given a service importing the HTTP server and a store module importing mDNS
    service = _synthetic(tmp_path, "meshnode/services/bad.py", "from aiohttp import web\n")
    store = _synthetic(tmp_path, "meshnode/store/bad.py", "import zeroconf.asyncio\n")
    protocol = _synthetic(tmp_path, "meshnode/protocol/bad.py", "import sqlite3\n")
    # Then each is reported with the lowest layer allowed to use it
    assert service == [
        "meshnode/services/bad.py:1 imports aiohttp.web (allowed from federation up)"]
    assert store == [
        "meshnode/store/bad.py:1 imports zeroconf.asyncio (allowed from federation up)"]
    assert protocol == ["meshnode/protocol/bad.py:1 imports sqlite3 (allowed from store up)"]


def test_layers__a_module_outside_the_table_is_reported(tmp_path: Path) -> None:
    found = _synthetic(tmp_path, "meshnode/newthing/mod.py", "x = 1\n")
    assert found == ["meshnode/newthing/mod.py:1 meshnode.newthing.mod is in no layer: add it "
                     "to LAYERS in tests/test_layers.py"]
