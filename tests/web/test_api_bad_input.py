"""Bad input gets a clear 4xx with the documented JSON error shape, and changes nothing."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from tests.conftest import TestMember, ride_listing


async def stored_listings(ctx: NodeContext) -> int:
    return await listing_store.count_listings(ctx.store.reader)


async def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["error"] == code
    assert body["message"]
    assert isinstance(body["fields"], dict)
    return body


@pytest.mark.parametrize("payload", [b"{", b"not json", b"\xff\xfe", b"[1,]", b'{"a": NaN}'])
async def test_create_listing__malformed_json_is_400_and_stores_nothing(
    client: TestClient, alice: TestMember, ctx: NodeContext, payload: bytes
) -> None:
    response = await client.post("/api/v1/listings", data=payload, headers=alice.headers)
    await assert_error(response, 400, "malformed_json")
    assert await stored_listings(ctx) == 0


async def test_create_listing__json_nested_1000_deep_is_400(
    client: TestClient, alice: TestMember, ctx: NodeContext
) -> None:
    response = await client.post(
        "/api/v1/listings", data=b"[" * 1000 + b"]" * 1000, headers=alice.headers
    )
    await assert_error(response, 400, "json_too_deep")
    assert await stored_listings(ctx) == 0


async def test_create_listing__invalid_fields_are_422_with_per_field_messages(
    client: TestClient, alice: TestMember, ctx: NodeContext
) -> None:
    bad = ride_listing(title="", details={"from": "Canal", "seats": 12})
    body = await assert_error(
        await client.post("/api/v1/listings", json=bad, headers=alice.headers),
        422,
        "validation_failed",
    )
    assert {"title", "details.to", "details.departure", "details.seats"} <= body["fields"].keys()
    assert await stored_listings(ctx) == 0


async def test_create_listing__unknown_category_is_400(
    client: TestClient, alice: TestMember, ctx: NodeContext
) -> None:
    response = await client.post(
        "/api/v1/listings", json=ride_listing(category="spaceship"), headers=alice.headers
    )
    body = await assert_error(response, 400, "unknown_category")
    assert "category" in body["fields"]
    assert await stored_listings(ctx) == 0


async def test_create_listing__body_over_cap_is_413(
    client: TestClient, alice: TestMember, ctx: NodeContext
) -> None:
    huge = json.dumps(ride_listing(description="x" * (ctx.config.max_body_bytes + 10)))
    response = await client.post("/api/v1/listings", data=huge, headers=alice.headers)
    await assert_error(response, 413, "payload_too_large")
    assert await stored_listings(ctx) == 0


async def test_create_listing__chunked_body_over_cap_is_413(
    client: TestClient, alice: TestMember, ctx: NodeContext
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 10_000  # no Content-Length: the cap applies while reading

    response = await client.post("/api/v1/listings", data=chunks(), headers=alice.headers)
    await assert_error(response, 413, "payload_too_large")
    assert await stored_listings(ctx) == 0


async def test_patch_listing__other_members_token_is_403_and_listing_unchanged(
    client: TestClient, alice: TestMember, bob: TestMember, ctx: NodeContext
) -> None:
    created = await (
        await client.post("/api/v1/listings", json=ride_listing(), headers=alice.headers)
    ).json()
    before = await listing_store.get_listing(ctx.store.reader, created["id"])
    response = await client.patch(
        f"/api/v1/listings/{created['id']}", json={"title": "Volé !"}, headers=bob.headers
    )
    await assert_error(response, 403, "forbidden")
    deleted = await client.delete(f"/api/v1/listings/{created['id']}", headers=bob.headers)
    await assert_error(deleted, 403, "forbidden")
    assert await listing_store.get_listing(ctx.store.reader, created["id"]) == before


async def test_api__disabled_members_token_is_401(
    client: TestClient, bob: TestMember, ctx: NodeContext
) -> None:
    await members.set_disabled(ctx, "bob", disabled=True)
    response = await client.post("/api/v1/listings", json=ride_listing(), headers=bob.headers)
    await assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await stored_listings(ctx) == 0


async def test_api__revoked_token_is_401(
    client: TestClient, bob: TestMember, ctx: NodeContext
) -> None:
    assert await members.revoke_tokens(ctx, username="bob") == 1
    response = await client.get("/api/v1/me", headers=bob.headers)
    await assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer mn_nope", "Basic YWxpY2U6cHc=", "Bearer " + "x" * 5000]
)
async def test_api__missing_or_invalid_token_is_401(
    client: TestClient, alice: TestMember, ctx: NodeContext, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.post("/api/v1/listings", json=ride_listing(), headers=headers)
    await assert_error(response, 401, "unauthorized")
    assert await stored_listings(ctx) == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "gift"}, "kind"),
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"near": "45.7"}, "near"),
        ({"near": "95,4"}, "near"),
        ({"radius_km": "-1"}, "radius_km"),
        ({"cursor": "garbage"}, "cursor"),
        ({"q": "x" * 300}, "q"),
    ],
)
async def test_search__bad_parameters_are_422(
    client: TestClient, alice: TestMember, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/v1/listings", params=params, headers=alice.headers)
    body = await assert_error(response, 422, "validation_failed")
    assert field in body["fields"]


async def test_api__unknown_route_is_json_404(client: TestClient, alice: TestMember) -> None:
    response = await client.get("/api/v1/nothing-here", headers=alice.headers)
    await assert_error(response, 404, "not_found")


async def test_responses__carry_security_headers(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"].split("script-src")[1]
    assert response.headers["X-Frame-Options"] == "DENY"
