"""Bearer-token authentication for the JSON API."""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import AuthenticationError
from meshnode.services import members
from meshnode.services.permissions import require_admin
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT


async def api_member(request: web.Request) -> MemberRow:
    """The active member whose token is in ``Authorization: Bearer …`` (401 otherwise)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("send an API token: 'Authorization: Bearer mn_…'")
    return await members.authenticate_token(request.app[CONTEXT], token.strip())


async def api_admin(request: web.Request,
                    refusal: str = "this needs an administrator's token") -> MemberRow:
    """The admin whose token is in the request (401 without a token, 403 for a member)."""
    member = await api_member(request)
    require_admin(member, refusal)
    return member
