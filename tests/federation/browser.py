"""A signed-in browser on a real node (the HTML pages over real HTTP)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from meshnode.services import members
from meshnode.store.members import MemberRow
from tests.conftest import PASSWORD
from tests.federation.conftest import Node

HTML = {"Accept": "text/html", "Accept-Language": "en"}
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def browser(node: Node, username: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A signed-in browser on a real node (cookies for 127.0.0.1 need the unsafe jar)."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=node.url, cookie_jar=jar) as session:
        token = await csrf(session, "/login")
        async with session.post("/login", data={"username": username, "password": PASSWORD,
                                                "csrf": token, "next": "/"},
                                headers=HTML, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        yield session


async def csrf(session: aiohttp.ClientSession, path: str) -> str:
    async with session.get(path, headers=HTML) as response:
        match = CSRF_RE.search(await response.text())
    assert match, path
    return match.group(1)


async def page(session: aiohttp.ClientSession, path: str) -> str:
    async with session.get(path, headers=HTML) as response:
        assert response.status == 200, path
        return await response.text()


async def submit(session: aiohttp.ClientSession, path: str, data: dict[str, str],
                 token_from: str) -> tuple[int, str, str]:
    token = await csrf(session, token_from)
    async with session.post(path, data={**data, "csrf": token}, headers=HTML,
                            allow_redirects=False) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


async def person(node: Node, username: str, *, admin: bool = False) -> MemberRow:
    return await members.add_member(node.ctx, username=username, password=PASSWORD,
                                    is_admin=admin)
