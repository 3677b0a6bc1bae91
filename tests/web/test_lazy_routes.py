"""The route table (web/routes_table.py) and the lazy handlers it is registered with.

``tests/web/test_lazy_imports.py`` checks on a started node that a route's module is imported
on its first request.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from meshnode.federation.actors import person
from meshnode.web.lazyroutes import handler_for, lazy_handler, reference, register_routes
from meshnode.web.negotiation import negotiated
from meshnode.web.pages.profiles import profile_page
from meshnode.web.routes import current_table
from meshnode.web.routes_table import ROUTES


def test_routes_table__matches_the_setup_functions() -> None:
    # Given the routes every setup_* function adds (web/routes.py), recorded now
    table = current_table()
    # Then the committed table is the same, route for route and in the same order
    assert tuple(table) == ROUTES, (
        "web/routes_table.py is stale: run PYTHONPATH=. python scripts/update_routes.py")


def test_register_routes__same_resources_and_methods_as_the_table() -> None:
    # Given an app with the table registered
    app = web.Application()
    register_routes(app, ROUTES)
    # Then each resource has the table's methods, in the table's order
    registered = [sorted(route.method for route in resource) for resource in app.router.resources()]
    expected = [sorted(method for methods, _ in routes for method in methods.split())
                for _, _, routes in ROUTES]
    assert registered == expected


def test_reference__a_closure_is_refused_by_name() -> None:
    # Given a handler that cannot be imported by its name (a closure)
    async def inner(request: web.Request) -> web.StreamResponse:
        return web.Response()

    # Then the recorder refuses it and says what to do
    with pytest.raises(TypeError, match="module-level name"):
        reference(inner)


def test_reference__a_negotiated_route_keeps_both_sides() -> None:
    # Given a content-negotiated handler built from two module-level handlers
    handler = negotiated(profile_page, person)
    # Then its reference names both sides, and reads back as a negotiated lazy handler
    ref = reference(handler)
    assert ref == "web.pages.profiles:profile_page|federation.actors:person"
    assert handler_for(ref).__qualname__ == "negotiated.<locals>.handler"


async def test_lazy_handler__imports_on_the_first_call_and_answers() -> None:
    # Given a lazy handler for a module-level handler
    handler = lazy_handler("web.lazyroutes:resolve")
    # Then its name says what it stands for, and an unknown reference fails on first call
    assert handler.__qualname__ == "lazy_handler(web.lazyroutes:resolve)"
    missing = lazy_handler("web.no_such_module:page")
    with pytest.raises(ModuleNotFoundError):
        await missing(None)  # type: ignore[arg-type]
