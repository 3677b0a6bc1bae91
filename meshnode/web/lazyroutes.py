"""Every route registered at start, its handler's module imported on its first request.

Issue 17 (a node on a Raspberry Pi): importing every page and API module at start to register
its routes cost about 70 modules and 2 MB of resident memory that an idle node, or one that
only federates, never uses. So ``create_app`` registers the routes from a table of strings,
``web/routes_table.py``: the same paths, methods, names and order in aiohttp's own router
(matching, 405s and ``url_for`` unchanged), each handler a small :func:`lazy_handler` that
imports ``module:function`` when the route is first asked for, then calls it directly.

The table is generated from the ``setup_*_routes`` functions, which stay where the routes are
written (``web/routes.py: setup_routes`` calls them all): after adding or changing a route,
run ``PYTHONPATH=. python scripts/update_routes.py``; ``tests/web/test_lazy_routes.py`` fails
while the table is stale.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from meshnode.web.negotiation import negotiated

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (path, route name, ((methods, handler reference), ...)) in registration order. Methods
# sharing a handler are written together ("HEAD GET"). A reference is "module:function" under
# ``meshnode.``, or "html|activity" for a content-negotiated route (web/negotiation.py; an
# empty activity side answers 406 to ActivityPub clients).
RouteEntry = tuple[str, str | None, tuple[tuple[str, str], ...]]
PACKAGE = "meshnode."
LINE = 100  # ruff's line length, for the generated table


def resolve(ref: str) -> Handler:
    """Import ``module:qualified.name`` and return the object it names."""
    module, _, qualname = ref.partition(":")
    found: Any = importlib.import_module(PACKAGE + module)
    for part in qualname.split("."):
        found = getattr(found, part)
    handler: Handler = found
    return handler


def lazy_handler(ref: str) -> Handler:
    """An aiohttp handler that imports ``ref`` (``module:function``) on its first request."""
    loaded: list[Handler] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        if not loaded:
            loaded.append(resolve(ref))
        return await loaded[0](request)

    handler.__qualname__ = f"lazy_handler({ref})"
    return handler


def handler_for(ref: str) -> Handler:
    """The lazy handler a table reference stands for (plain, or content-negotiated)."""
    if "|" not in ref:
        return lazy_handler(ref)
    html, _, activity = ref.partition("|")
    return negotiated(lazy_handler(html), lazy_handler(activity) if activity else None)


def register_routes(app: web.Application, table: Iterable[RouteEntry]) -> None:
    """Add every route of ``table`` to ``app``'s router, in order, with lazy handlers."""
    for path, name, routes in table:
        resource = app.router.add_resource(path, name=name)
        for methods, ref in routes:
            handler = handler_for(ref)
            for method in methods.split():
                resource.add_route(method, handler)


def reference(handler: Callable[..., Any]) -> str:
    """The table reference of a handler registered by a ``setup_*`` function.

    Raises ``TypeError`` for a handler that cannot be imported by name (a closure, a partial):
    give it a module-level name.
    """
    if handler.__code__.co_freevars == ("activity", "html") and (
            handler.__qualname__ == "negotiated.<locals>.handler"):
        cells = dict(zip(handler.__code__.co_freevars,
                         (cell.cell_contents for cell in handler.__closure__ or ()),
                         strict=True))
        activity = cells["activity"]
        return f"{reference(cells['html'])}|{reference(activity) if activity else ''}"
    ref = f"{handler.__module__.removeprefix(PACKAGE)}:{handler.__qualname__}"
    try:
        named = resolve(ref)
    except (ImportError, AttributeError):
        named = None
    if named is not handler:
        raise TypeError(f"{ref} cannot be imported by name: give the handler a module-level name")
    return ref


def record_routes(app: web.Application, setup: Callable[[web.Application], None]
                  ) -> list[RouteEntry]:
    """The table of the routes ``setup`` adds to ``app`` (static routes left out: the page
    state registers ``/static`` itself)."""
    paths: dict[int, str] = {}
    add_resource = app.router.add_resource

    def recording(path: str, *, name: str | None = None) -> web.Resource:
        resource = add_resource(path, name=name)
        paths.setdefault(id(resource), path)
        return resource

    app.router.add_resource = recording  # type: ignore[method-assign]
    try:
        setup(app)
    finally:
        del app.router.add_resource  # back to the class's method
    return [(paths[id(resource)], resource.name, _grouped(resource))
            for resource in app.router.resources() if id(resource) in paths]


def _grouped(resource: web.AbstractResource) -> tuple[tuple[str, str], ...]:
    methods: dict[str, list[str]] = {}
    for route in resource:
        methods.setdefault(reference(route.handler), []).append(route.method)
    return tuple((" ".join(names), ref) for ref, names in methods.items())


def table_source(table: list[RouteEntry]) -> str:
    """``web/routes_table.py``'s text for ``table``."""
    lines = ['"""Every route of the node, generated by ``scripts/update_routes.py`` from the',
             "``setup_*`` functions (``web/routes.py``): do not edit by hand (see",
             '``web/lazyroutes.py``)."""', "", "from __future__ import annotations", "",
             "from meshnode.web.lazyroutes import RouteEntry", "",
             "ROUTES: tuple[RouteEntry, ...] = ("]
    for path, name, routes in table:
        line = f"    ({path!r}, {name!r}, {routes!r}),"
        if len(line) <= LINE:
            lines.append(line)
            continue
        lines.append(f"    ({path!r}, {name!r}, (")
        lines.extend(f"        {route!r}," for route in routes)
        lines.append("    )),")
    lines.append(")")
    return "\n".join(lines) + "\n"
