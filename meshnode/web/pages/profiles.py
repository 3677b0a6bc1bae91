"""Public profile pages (``/users/{username}``; ActivityPub clients get the actor there)."""

from __future__ import annotations

from aiohttp import web

from meshnode import urls
from meshnode.federation.actors import group as group_json
from meshnode.federation.actors import person as actor_json
from meshnode.services import deals, members, names, reputation
from meshnode.services import listings as listing_service
from meshnode.store.listings import SearchFilters
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import render
from meshnode.web.negotiation import negotiated
from meshnode.web.pages.deals import feedback_summary
from meshnode.web.pages.forms import form_choices
from meshnode.web.pages.listings import card_context


async def profile_page(request: web.Request) -> web.Response:
    """A member's name, bio, date of joining and current listings."""
    ctx = request.app[CONTEXT]
    member = await members.get_member(ctx, request.match_info["username"])
    page = await listing_service.search_listings(ctx, SearchFilters(author_id=member.id, limit=50))
    received = await deals.feedback_about(ctx, member.username)
    return await render(request, "profile.html", {
        "person": member, "listings": await card_context(ctx, page.items, page.taken),
        **form_choices(),
        "feedback": received, "feedback_summary": feedback_summary(received),
        "parties": await names.actor_parties(ctx, [f.author_uri for f in received]),
        "reputation": await reputation.count_for(
            ctx, urls.member_actor(ctx.config.base_url, member.username)),
    })


async def community_page(request: web.Request) -> web.Response:
    """Browsers asking for the community actor's URL get the home page."""
    raise web.HTTPFound("/")


def setup_profile_pages(app: web.Application) -> None:
    """Register the actors' URLs: pages for browsers, ActivityPub documents for peers."""
    app.router.add_get("/users/{username}", negotiated(profile_page, actor_json))
    app.router.add_get("/groups/{handle}", negotiated(community_page, group_json))
