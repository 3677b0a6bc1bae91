"""Property test: whatever is thrown at any route's parameters and fields, no route answers 5xx.

Every route is read from the app's router, so a new route is covered without editing this
file. Each example sends one request to *every* route: path parameters, query parameters and
body fields (JSON for the API and the inboxes, a form with a valid CSRF token for pages)
filled with hostile values: Unicode digits (``²``, ``١٢``), 20-digit and 4,400-digit
numbers, ``1e308``/``inf``/``nan``, years 0001 and 9999, lone surrogates, long strings,
nested objects and wrong types. Field names come from the source itself (every
``.get("name")``/``["name"]`` literal under meshnode/web, services and protocol) plus the
paging parameters, so new fields are fuzzed too. The API is called with an admin's bearer
token and the pages with the same admin signed in, so the checks behind authentication are
reached. ``POST /logout`` is left out: it would end the session the other routes need.

One node is shared by all examples of a share (hostile requests that happen to succeed only
add state, which every later request must survive too). Size: 15 examples per share, so each
route gets 15 hostile requests per run (about 1,700 in all); measured on the 2-core test
machine, about 13 s of CPU and 25-40 s of wall time depending on the load. Against main before
the parsing layer, every share failed within its first examples. There is no shrinking: the
failure message names the request (method, URL, query, body and the start of the answer).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from meshnode.services.context import NodeContext
from tests.conftest import MakeMember, TestMember, ride_listing
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride

ROOT = Path(__file__).resolve().parents[2] / "meshnode"
FIELD_RE = re.compile(r'''(?:\.get\(|\[|field\(form, |getall\()\s*"([a-z][a-z0-9_.-]{0,40})"''')
PAGING = ("after", "before", "page", "cursor", "limit", "resource", "id", "next", "done")
SKIPPED = {("POST", "/logout")}
HUGE_INT = "<<huge-int>>"  # replaced in the raw body: json.dumps refuses ints over 4,300 digits
# The routes are dealt into SHARES tests (one node each), so that one example's draws stay
# within Hypothesis's data budget; each example sends one request to every route of its
# share. EXAMPLES per share: see the module docstring for the measured time.
SHARES = 8
EXAMPLES = 15

HOSTILE = [
    "²", "١٢", "৪", "0²", "9" * 20, "1" * 4400, "-1", "0", "-0", "+5", " 7", "1e308", "1e400",
    "10^30", "100000000000", "NaN", "inf", "-inf", "1,5", "4.5", "0x10", "1_000",
    "0001-01-01", "9999-12-31", "0000-00-00", "2026-02-30", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "9999-12-31T23:59", "0001-01-01T00:00", "2026-13-45T99:99",
    "", " ", "\x00", "x" * 3000, "../../etc/passwd", "%", "%00", "acct:x@127.0.0.1",
    "bob", "voisins", "true", "null", "[]", "{}", "é" * 50,
]
SURROGATES = ["\ud800", "a\udfffb", "\udc00\ud800"]

plain_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12),
                       st.integers().map(str), st.floats().map(repr))
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(), st.sampled_from(HOSTILE + SURROGATES), st.just(HUGE_INT), st.text(max_size=12),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=3),
    max_leaves=6,
)


def field_names() -> list[str]:
    """Every field name the code reads, found in its source."""
    names: set[str] = set(PAGING)
    for package in ("web", "services", "protocol"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(FIELD_RE.findall(path.read_text(encoding="utf-8")))
    return sorted(names)


@dataclass(frozen=True)
class Route:
    """One method and path template taken from the router."""

    method: str
    template: str
    resource: web.AbstractResource

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)", self.template)

    @property
    def is_json(self) -> bool:
        return self.template.startswith("/api/") or self.template.endswith("inbox") or \
            self.template.startswith("/.well-known/meshnode")


def routes_of(app: web.Application) -> list[Route]:
    """Every route of the app except HEAD (same handler as GET), static files and SKIPPED."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path")
        if route.method == "HEAD" or not template or (route.method, template) in SKIPPED:
            continue
        assert route.resource is not None
        found.append(Route(route.method, str(template), route.resource))
    return found


@dataclass
class World:
    """The shared node: a signed-in admin, real ids to aim path parameters at."""

    client: TestClient
    admin: TestMember
    csrf: str
    real: list[str]
    fields: list[str]


def json_body(fields: list[str], templates: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """A valid document with some fields replaced, or any JSON value at all."""
    names = st.sampled_from(fields)
    patched = st.tuples(st.sampled_from(templates),
                        st.dictionaries(names, json_value, max_size=4),
                        st.sampled_from(["", "details", "price", "location"]))
    return st.one_of(patched.map(_patch), json_value)


def _patch(drawn: tuple[dict[str, Any], dict[str, Any], str]) -> dict[str, Any]:
    template, changes, where = drawn
    document = json.loads(json.dumps(template))
    target = document.get(where) if where else document
    (target if isinstance(target, dict) else document).update(changes)
    return document


def encode_json(value: Any) -> bytes:
    """JSON text (lone surrogates escaped), with HUGE_INT markers turned into 4,400 digits."""
    return json.dumps(value).replace(json.dumps(HUGE_INT), "1" * 4400).encode()


async def send(world: World, route: Route, path_values: dict[str, str], query: dict[str, str],
               body: Any, form: dict[str, str]) -> tuple[int, str]:
    """One request to ``route``; returns its status and a description for the failure report."""
    try:
        url = str(route.resource.url_for(**path_values))
    except (ValueError, KeyError):  # a value aiohttp itself cannot put in a URL
        url = route.template
        for name in route.params:
            url = url.replace("{" + name + "}", "x")
    if route.is_json:
        headers = {**world.admin.headers, "Content-Type": "application/json"}
        data: Any = encode_json(body) if route.method != "GET" else None
    else:
        headers = dict(HTML)
        data = {**form, "csrf": world.csrf} if route.method != "GET" else None
    response = await world.client.request(route.method, url, params=query, data=data,
                                          headers=headers, allow_redirects=False)
    text = (await response.read()).decode("utf-8", "replace")  # some answers are zip files
    return response.status, f"{route.method} {url} query={query!r} body={data!r}: {text[:300]}"


def request_for(world: World, route: Route) -> st.SearchStrategy[tuple[Any, ...]]:
    """Hostile values for every path parameter, some query parameters and the body."""
    url_text = plain_text.filter(lambda s: "\x00" not in s)
    path_values = st.fixed_dictionaries(
        {name: st.one_of(st.sampled_from(world.real), url_text) for name in route.params})
    names = st.sampled_from(world.fields)
    query = st.dictionaries(names, url_text, max_size=3)
    templates = [ride_listing(), {"payee": "bob", "amount": "1.00", "memo": "x"},
                 {"payer": "bob", "amount": "1.00"}, {}]
    form = st.dictionaries(names, plain_text, max_size=5)
    return st.tuples(path_values, query, json_body(world.fields, templates), form)


@pytest.fixture
async def world(client: TestClient, ctx: NodeContext, make_member: MakeMember) -> World:
    """An admin signed in (cookie in the client's jar) and a few real objects to aim at."""
    admin = await make_member("fuzzer", admin=True)
    bob = await make_member("bob")
    await login(client, "fuzzer")
    listing = await make_ride(ctx, bob)
    return World(client=client, admin=admin, csrf=await csrf_of(client, "/settings"),
                 real=[listing, "bob", ctx.config.handle, "1", "approve", "accept"],
                 fields=field_names())


# No shrinking: a step would replay a whole share of requests, and the assertion already names
# the request that failed (method, URL, query, body and the answer).
@settings(max_examples=EXAMPLES, deadline=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
@pytest.mark.parametrize("share", range(SHARES))
async def test_every_route__hostile_parameters_and_fields_never_answer_5xx(
    world: World, share: int, data: st.DataObject
) -> None:
    # Given one node with a signed-in admin (the fixture runs once for all examples)
    routes = routes_of(world.client.app)
    assert len(routes) > 100  # the router was read, not an empty list
    for route in routes[share::SHARES]:
        # When every route receives hostile values in every place it reads input from
        drawn = data.draw(request_for(world, route), label=f"{route.method} {route.template}")
        status, described = await send(world, route, *drawn)
        # Then none of them is a server error
        assert status < 500, described


@pytest.mark.parametrize("value", ["99999999999999999999999", "١٢", "-1", "1e3"])
async def test_every_route__ids_sqlite_cannot_hold_or_non_ascii_digits_never_answer_5xx(
    world: World, value: str
) -> None:
    # Given every route, with the admin signed in
    routes = routes_of(world.client.app)
    assert len(routes) > 100
    for route in routes:
        if not route.params:
            continue
        # When each path parameter is a number SQLite cannot bind (int() took it and binding
        # raised OverflowError: a 500) or digits that are not ASCII
        body = {"decision": "apply"} if route.method == "POST" else {}
        status, described = await send(world, route, dict.fromkeys(route.params, value), {},
                                       body, {"decision": "apply"})
        # Then none of them is a server error
        assert status < 500, described
