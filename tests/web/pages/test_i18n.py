"""French and English: negotiation, member preference, catalogue completeness, formatting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from meshnode.services import accounts
from meshnode.services.context import NodeContext
from meshnode.web.i18n import I18n, negotiate
from tests import conftest as base
from tests.web.pages.conftest import login, make_ride

ROOT = Path(__file__).resolve().parents[3]
LOCALE = ROOT / "meshnode" / "web" / "locale"


@pytest.mark.parametrize(("header", "expected"), [
    ("fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("en-GB,en;q=0.9", "en"), ("de,en;q=0.5,fr;q=0.7", "fr"),
    ("de", None), ("", None), ("fr;q=0,en", "en"), ("fr;q=abc", None),
])
def test_negotiate__accept_language(header: str, expected: str | None) -> None:
    assert negotiate(header) == expected


def test_i18n__each_language_is_compiled_on_its_first_use_only() -> None:
    # Given the node's languages, ready
    i18n = I18n.build(default="fr", timezone="Europe/Paris", symbol="G", decimals=2)
    # Then no catalogue is compiled yet, though both languages are offered
    assert i18n.translators.made == {}
    assert "fr" in i18n.translators
    assert "en" in i18n.translators
    assert list(i18n.translators) == ["fr", "en"]
    # When an English reader comes, Then English alone is compiled, and translates
    english = i18n.choose(None, "en-GB,en;q=0.9")
    assert list(i18n.translators.made) == ["en"]
    assert english.gettext("Log in") == "Log in"
    # When a French member comes, Then French is compiled too, once
    french = i18n.choose("fr", "")
    assert french is i18n.choose("fr", "") is i18n.translators["fr"]
    assert french.gettext("Log in") == "Se connecter"
    # And an unknown language is refused as before
    with pytest.raises(KeyError):
        i18n.translators["de"]


async def test_pages__french_from_accept_language(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    headers = {"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"}
    home = await (await client.get("/", headers=headers)).text()
    assert '<html lang="fr">' in home
    assert "Dernières annonces" in home
    page = await (await client.get(f"/listings/{listing_id}", headers=headers)).text()
    assert "Signé par alice (alice@127.0.0.1:8080), vérifié" in page
    assert "4,50\u00a0G" in page  # French decimal comma
    assert "5 déc. 2026" in page  # departure, formatted by Babel in Europe/Paris
    english = await (await client.get(f"/listings/{listing_id}",
                                      headers={"Accept-Language": "en"})).text()
    assert "4.50\u00a0G" in english
    assert "Dec 5, 2026" in english


async def test_pages__default_locale_when_browser_says_nothing(client: TestClient) -> None:
    home = await client.get("/", headers={"Accept-Language": "de"})
    assert home.headers["Content-Language"] == "fr"  # node default_locale


async def test_pages__member_preference_beats_browser(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await accounts.update_profile(ctx, alice.row, display_name="Alice", bio="", locale="en")
    await login(client, "alice")
    home = await client.get("/", headers={"Accept-Language": "fr"})
    assert home.headers["Content-Language"] == "en"
    assert "Newest listings" in await home.text()


def test_catalogues__every_string_is_in_both_and_translated_in_french() -> None:
    found = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(
            str(ROOT / "meshnode" / "web"),
            method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
            keywords={"_": None, "N_": None, "ngettext": (1, 2)},
        )
    }
    assert len(found) > 150
    for lang in ("fr", "en"):
        with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            catalog = read_po(handle)
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
        assert found <= ids, f"{lang}: run scripts/update_catalogs.py: {sorted(found - ids)[:5]}"
        if lang == "fr":
            untranslated = [m.id for m in catalog if m.id and not (
                m.string if isinstance(m.string, str) else all(m.string))]
            assert untranslated == []


# Errors a page can show (form fields, notices, the error page): their messages must be
# literal catalogue entries or ``Text`` templates, never f-strings (those stay English).
PAGE_ERRORS = {"ConflictError", "ValidationError", "LimitExceededError", "CapacityError",
               "TransitionError", "NotYourMoveError", "PermissionDeniedError",
               "PayloadTooLargeError", "UnsupportedMediaError", "RateLimitedError",
               "AuthenticationError", "HTTPBadRequest", "require_admin", "api_admin"}
PAGE_ERROR_SOURCES = (
    *sorted(p for p in (ROOT / "meshnode" / "services").rglob("*.py") if p.name != "node.py"),
    *(ROOT / "meshnode" / "protocol" / f"{name}.py"
      for name in ("deals", "ledger", "amounts", "timefmt", "parsing")),
    *sorted((ROOT / "meshnode" / "protocol" / "listings").glob("*.py")),
    *sorted((ROOT / "meshnode" / "web" / "pages").glob("*.py")),
    ROOT / "meshnode" / "federation" / "peering.py", ROOT / "meshnode" / "federation" / "iou.py",
)


def _page_error_messages(paths: tuple[Path, ...]) -> tuple[set[str], list[str]]:
    """Every message an error raised in ``paths`` carries, and where f-strings are used."""
    found: set[str] = set()
    fstrings: list[str] = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else "")
            if name == "Text" and node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
            if name not in PAGE_ERRORS:
                continue
            values: list[ast.expr] = list(node.args[:1])
            for extra in (*node.args[1:], *(k.value for k in node.keywords
                                             if k.arg in ("fields", "reason"))):
                values.extend(extra.values if isinstance(extra, ast.Dict) else [extra])
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.add(value.value)
                elif isinstance(value, ast.Name) and value.id in constants:
                    found.add(constants[value.id])
                elif isinstance(value, ast.JoinedStr):
                    fstrings.append(f"{path.name}:{value.lineno}")
    return found, fstrings


def test_catalogues__every_error_a_page_can_show_is_translated_in_french() -> None:
    found, fstrings = _page_error_messages(PAGE_ERROR_SOURCES)
    assert fstrings == [], "use Text('... %(name)s ...', name=value) instead of f-strings"
    assert len(found) > 200
    assert "only %(left)s %(unit)s(s) left, asked %(asked)s" in found
    for lang in ("fr", "en"):
        with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            catalog = read_po(handle)
        ids = {m.id for m in catalog if m.id and (lang == "en" or m.string)}
        assert sorted(found - ids) == [], f"{lang}: add these msgids at the end of the .po"
