"""Listing images: re-encoded, stripped of metadata, capped in size, type and count."""

from __future__ import annotations

import io

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image

from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from tests.conftest import TestMember, ride_listing


def picture(
    fmt: str = "PNG", size: tuple[int, int] = (64, 48), *, mode: str = "RGB", exif: bool = False
) -> bytes:
    image = Image.new(mode, size, 1 if mode == "1" else (200, 30, 30))
    out = io.BytesIO()
    if exif:
        info = Image.Exif()
        info[0x010F] = "PhoneMaker"  # Make
        info[0x8825] = {2: (45.0, 45.0, 45.0)}  # GPS latitude
        image.save(out, format=fmt, exif=info)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


def form(data: bytes, filename: str = "photo.png", alt: str = "") -> FormData:
    payload = FormData()
    payload.add_field("image", data, filename=filename, content_type="application/octet-stream")
    if alt:
        payload.add_field("alt", alt)
    return payload


@pytest.fixture
async def listing_id(client: TestClient, alice: TestMember) -> str:
    response = await client.post("/api/v1/listings", json=ride_listing(), headers=alice.headers)
    return str((await response.json())["id"])


async def image_count(ctx: NodeContext, listing_id: str) -> int:
    return len(await listing_store.list_images(ctx.store.reader, listing_id))


async def test_add_image__reencodes_as_jpeg_without_exif_and_signs_new_version(
    client: TestClient, alice: TestMember, listing_id: str
) -> None:
    response = await client.post(
        f"/api/v1/listings/{listing_id}/images",
        data=form(picture("JPEG", exif=True), alt="La voiture"),
        headers=alice.headers,
    )
    assert response.status == 201, await response.text()
    listing = await response.json()
    assert listing["version"] == 2
    [image] = listing["images"]
    assert image["alt"] == "La voiture"
    assert listing["signed_object"]["image"][0]["url"] == image["url"]
    served = await client.get(image["url"].removeprefix("http://127.0.0.1:8080"))
    assert served.status == 200
    assert served.content_type == "image/jpeg"
    stored = Image.open(io.BytesIO(await served.read()))
    assert stored.format == "JPEG"
    assert not stored.getexif()


async def test_add_image__large_picture_is_downscaled(
    client: TestClient, alice: TestMember, listing_id: str
) -> None:
    response = await client.post(
        f"/api/v1/listings/{listing_id}/images",
        data=form(picture("PNG", (3200, 1000))),
        headers=alice.headers,
    )
    [image] = (await response.json())["images"]
    assert (image["width"], image["height"]) == (1600, 500)


async def test_add_image__fifth_image_is_413(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext
) -> None:
    for _ in range(4):
        ok = await client.post(
            f"/api/v1/listings/{listing_id}/images", data=form(picture()), headers=alice.headers
        )
        assert ok.status == 201
    refused = await client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(picture()), headers=alice.headers
    )
    assert refused.status == 413
    assert await image_count(ctx, listing_id) == 4


async def test_add_image__oversized_file_is_413(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext
) -> None:
    big = picture() + b"\0" * (ctx.config.max_image_bytes + 1)
    response = await client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(big), headers=alice.headers
    )
    assert response.status == 413
    assert await image_count(ctx, listing_id) == 0


async def test_add_image__decompression_bomb_is_413(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext
) -> None:
    bomb = picture("PNG", (10_000, 10_000), mode="1")  # 100 Mpx in a few kilobytes
    assert len(bomb) < 100_000
    response = await client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(bomb), headers=alice.headers
    )
    assert response.status == 413
    assert await image_count(ctx, listing_id) == 0


@pytest.mark.parametrize(
    "payload", [b"<svg onload=alert(1)></svg>", b"GIF89a garbage", b"%PDF-1.4"]
)
async def test_add_image__non_image_is_415(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext, payload: bytes
) -> None:
    response = await client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(payload), headers=alice.headers
    )
    assert response.status == 415
    assert await image_count(ctx, listing_id) == 0
    assert not (ctx.config.media_dir / listing_id).exists()


async def test_add_image__someone_elses_listing_is_403(
    client: TestClient, bob: TestMember, listing_id: str, ctx: NodeContext
) -> None:
    response = await client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(picture()), headers=bob.headers
    )
    assert response.status == 403
    assert await image_count(ctx, listing_id) == 0


async def test_remove_image__detaches_and_deletes_file(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext
) -> None:
    added = await (
        await client.post(
            f"/api/v1/listings/{listing_id}/images", data=form(picture()), headers=alice.headers
        )
    ).json()
    image_id = added["images"][0]["id"]
    response = await client.delete(
        f"/api/v1/listings/{listing_id}/images/{image_id}", headers=alice.headers
    )
    assert response.status == 200
    assert (await response.json())["images"] == []
    assert not (ctx.config.media_dir / listing_id / f"{image_id}.jpg").exists()
