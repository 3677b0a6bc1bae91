"""The network map: ``/admin/network`` (administrators: everything this node knows) and
``/network`` (anyone, unless ``[map] public = false``: without blocked communities, and
without limits and balances unless ``[map] public_balances``). An SVG drawn on the server
(``web/network_svg.py``) and, under it, tables with the same data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from markupsafe import Markup

from meshnode.services import network_map as nm
from meshnode.web import network_svg as svg
from meshnode.web.appkeys import CONTEXT, PUBLIC_MAP, PUBLIC_MAP_SECONDS
from meshnode.web.browser import current_member, render, require_admin, translator
from meshnode.web.i18n import N_, Translator
from meshnode.web.pages.wallet import money

RELATION_LABELS = {"peered": N_("Peered"), "requested": N_("Peering requested"),
                   "failed": N_("Peering failed"), "blocked": N_("Blocked"),
                   "heard": N_("Known through our peers")}
LINE_LABELS = {"proposed": N_("Proposed"), "pending": N_("Offered to us"),
               "active": N_("Active"), "rejected": N_("Rejected"), "frozen": N_("Frozen"),
               "closed": N_("Closed")}
LEGEND = {"peered": N_("Peered"), "requested": N_("Peering requested or failed"),
          "line": N_("Trust line (width: exchanges in 30 days)"),
          "failing": N_("Deliveries failing"),
          "heard": N_("Known through our peers")}
KIND_LABELS = {"self": N_("This community"), "peer": N_("Peer community"),
               "heard": N_("Heard of")}


def _style(link: nm.Link) -> str:
    if link.failing:
        return "failing"
    if link.line_state in ("active", "frozen"):
        return "line"
    if link.relation in ("requested", "failed"):
        return "requested"
    return "peered" if link.relation == "peered" else "heard"


def _edge_text(tr: Translator, link: nm.Link, amount: Callable[[int | None], str]) -> str:
    if link.volume:
        return tr.gettext(N_("30 d: %(amount)s"), amount=amount(link.volume))
    return ""


def _edges(tr: Translator, data: nm.NetworkMap,
           amount: Callable[[int | None], str]) -> list[svg.MapEdge]:
    top = max((link.volume for link in data.links.values()), default=0) or 1
    return [svg.MapEdge(key=origin, style=_style(link), text=_edge_text(tr, link, amount),
                     width=1.5 + (4.5 * link.volume / top if link.line_state else 0))
            for origin, link in data.links.items() if link.relation != "blocked"] + [
        svg.MapEdge(key=target, source=source, style="peered", width=1.0)
        for source, target in data.remote_links]


def picture(tr: Translator, data: nm.NetworkMap, amount: Callable[[int | None], str],
            ident: str) -> Markup:
    """The SVG of ``data``, titled and described in the reader's language."""
    center = svg.MapNode(data.me.origin, data.me.party.name, "self")
    others = [svg.MapNode(c.origin, c.party.name, c.kind) for c in data.others]
    peers = sum(1 for c in data.others if c.kind == "peer")
    desc = tr.gettext(N_(
        "%(name)s in the centre, its peers around it (%(peers)s), communities known through"
        " them further out (%(heard)s). Lines show who peers with whom, trust lines and"
        " failing deliveries; the tables below give the same data."),
        name=data.me.party.name, peers=peers, heard=len(data.others) - peers + data.more)
    drawing = svg.render(center, others, _edges(tr, data, amount),
                         title=tr.gettext(N_("Network map of %(name)s"), name=data.me.party.name),
                         desc=desc, labels={k: tr.gettext(v) for k, v in LEGEND.items()},
                         ident=ident)
    return Markup(drawing)  # noqa: S704 - every text in it is escaped by network_svg.text


async def _page(request: web.Request, *, public: bool) -> web.Response:
    ctx = request.app[CONTEXT]
    tr = translator(request, await current_member(request))
    data = await (_public_map(request) if public else nm.network_map(ctx, public=False))
    amount = money(request)
    return await render(request, "network_map.html", {
        "map": data, "svg": picture(tr, data, amount, "netmap"), "amount": amount,
        "public": public, "show_balances": not public or ctx.config.map.public_balances,
        "relation_labels": RELATION_LABELS, "line_labels": LINE_LABELS,
        "kind_labels": KIND_LABELS, "volume_days": nm.VOLUME_DAYS,
        "names": {c.origin: c.party.name for c in (data.me, *data.others)},
    })


async def _public_map(request: web.Request) -> nm.NetworkMap:
    cache = request.app[PUBLIC_MAP]
    now = asyncio.get_running_loop().time()
    if cache.data is None or now - cache.built_at >= PUBLIC_MAP_SECONDS:
        cache.data = await nm.network_map(request.app[CONTEXT], public=True)
        cache.built_at = now
    return cache.data


async def admin_map(request: web.Request) -> web.Response:
    """``GET /admin/network``: the whole map, with limits and balances."""
    await require_admin(request)
    return await _page(request, public=False)


async def public_map(request: web.Request) -> web.Response:
    """``GET /network``: the public map (404 when ``[map] public = false``)."""
    if not request.app[CONTEXT].config.map.public:
        raise web.HTTPNotFound
    return await _page(request, public=True)


def setup_network_map_pages(app: web.Application) -> None:
    """Register the two map pages (their cache is made at start: web/pagestate.py)."""
    app.router.add_get("/admin/network", admin_map)
    app.router.add_get("/network", public_map)



