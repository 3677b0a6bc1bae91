"""Discovery documents: WebFinger, NodeInfo, actors with content negotiation, collections."""

from __future__ import annotations

import aiohttp

from tests.federation.conftest import NodeFactory


async def _get(url: str, accept: str = "application/activity+json") -> tuple[int, dict, str]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as session, session.get(
            url, headers={"Accept": accept}) as response:
        return response.status, dict(response.headers), await response.text()


async def test_webfinger__group_and_person(make_node: NodeFactory) -> None:
    node = await make_node("alpha")
    await node.member("alice")
    host = node.url.removeprefix("http://")
    for name, actor in (("alpha", node.group), ("alice", f"{node.url}/users/alice")):
        status, headers, text = await _get(
            f"{node.url}/.well-known/webfinger?resource=acct:{name}@{host}")
        assert status == 200
        assert headers["Content-Type"].startswith("application/jrd+json")
        assert f'"href": "{actor}"' in text
    status, _, _ = await _get(f"{node.url}/.well-known/webfinger?resource=acct:nobody@{host}")
    assert status == 404


async def test_actor__document_per_reference(make_node: NodeFactory) -> None:
    import json

    node = await make_node("alpha")
    await node.member("alice")
    for accept in ("application/activity+json",
                   'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'):
        status, headers, text = await _get(f"{node.url}/users/alice", accept)
        assert status == 200
        assert headers["Vary"] == "Accept"
        doc = json.loads(text)
        assert "https://www.w3.org/ns/did/v1" in doc["@context"]
        assert "https://w3id.org/security/multikey/v1" in doc["@context"]
        assert doc["preferredUsername"] == "alice"
        assert doc["publicKey"]["id"] == f"{node.url}/users/alice#main-key"
        assert doc["assertionMethod"][0]["id"] == f"{node.url}/users/alice#ed25519-key"
        assert doc["endpoints"]["sharedInbox"] == f"{node.url}/inbox"
    _, _, text = await _get(node.group)
    assert json.loads(text)["type"] == "Group"


async def test_nodeinfo_and_outbox_paging(make_node: NodeFactory) -> None:
    import json

    node = await make_node("alpha")
    alice = await node.member("alice")
    await node.publish(alice)
    status, _, text = await _get(f"{node.url}/.well-known/nodeinfo", "application/json")
    href = json.loads(text)["links"][0]["href"]
    status, _, text = await _get(href, "application/json")
    assert status == 200
    assert json.loads(text)["usage"]["localPosts"] == 1
    _, _, text = await _get(f"{node.group}/outbox")
    collection = json.loads(text)
    assert collection["totalItems"] == 1
    _, _, text = await _get(collection["first"])
    page = json.loads(text)
    assert page["orderedItems"][0]["type"] == "Create"
    _, _, text = await _get(page["next"])
    assert json.loads(text)["orderedItems"] == []
