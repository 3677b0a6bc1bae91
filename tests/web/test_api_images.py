"""Listing images: re-encoded, stripped of metadata, capped in size, type and count."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image

from meshnode.app import create_app
from meshnode.services import images, members
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from meshnode.web.appkeys import CONTEXT
from tests.conftest import PASSWORD, FakeClock, TestMember, make_config, ride_listing


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
    # A file object, not bytes: aiohttp's client warns (ResourceWarning) for a large raw body
    payload.add_field("image", io.BytesIO(data), filename=filename,
                      content_type="application/octet-stream")
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


# --- resources: pixel cap, decode budget, one decode at a time, atomic uploads ---------------


def jpeg(size: tuple[int, int]) -> bytes:
    return picture("JPEG", size)


async def wait_until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (bounded, no timed assertion)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail("condition never became true")


async def media_files(ctx: NodeContext, listing_id: str) -> list[str]:
    folder = ctx.config.media_dir / listing_id
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_add_image__small_png_declaring_40_mpx_is_413_and_nothing_is_kept(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext
) -> None:
    # Given the 6300×6300 PNG: a few kilobytes that decode to 160 MB
    bomb = picture("PNG", (6300, 6300))
    assert len(bomb) < 200_000
    # When it is uploaded
    response = await client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(bomb), headers=alice.headers
    )
    # Then it is refused from its header, and nothing was stored
    assert response.status == 413
    assert "pixels" in (await response.json())["message"]
    assert await image_count(ctx, listing_id) == 0
    assert await media_files(ctx, listing_id) == []


async def test_add_image__png_over_the_decode_budget_is_413_but_a_jpeg_that_size_is_accepted(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext
) -> None:
    # A 4000×3000 RGBA PNG must be decoded at full size (about 120 MB with its copies);
    # a JPEG of the same size is reduced while decoding (about 25 MB).
    png = picture("PNG", (4000, 3000), mode="RGBA")
    refused = await client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(png), headers=alice.headers
    )
    assert refused.status == 413
    assert "too large to process" in (await refused.json())["message"]
    assert await image_count(ctx, listing_id) == 0
    accepted = await client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(jpeg((4000, 3000))),
        headers=alice.headers,
    )
    assert accepted.status == 201
    [image] = (await accepted.json())["images"]
    assert (image["width"], image["height"]) == (1600, 1200)


async def test_add_image__twelve_concurrent_uploads_store_one_row_and_one_file_the_rest_409(
    aiohttp_client, tmp_path: Path, clock: FakeClock  # type: ignore[no-untyped-def]
) -> None:
    # Given a node that lets 12 uploads in at once, and a listing at version 1
    app = create_app(make_config(tmp_path / "node", max_concurrent_uploads=12), clock=clock)
    client: TestClient = await aiohttp_client(app)
    ctx = app[CONTEXT]
    await members.add_member(ctx, username="alice", password=PASSWORD)
    headers = {"Authorization": f"Bearer {(await members.create_token(ctx, 'alice')).secret}"}
    created = await client.post("/api/v1/listings", json=ride_listing(), headers=headers)
    listing_id = (await created.json())["id"]
    # When twelve uploads have all read version 1 and queue for the decoder at once
    await ctx.images.gate.acquire()
    uploads = [
        asyncio.create_task(client.post(f"/api/v1/listings/{listing_id}/images",
                                        data=form(picture()), headers=headers))
        for _ in range(12)
    ]
    await wait_until(lambda: ctx.images.waiting == 12)
    ctx.images.gate.release()
    statuses = sorted([(await upload).status for upload in uploads])
    # Then one wins, eleven get 409, and exactly one row and one file exist
    assert statuses == [201] + [409] * 11
    rows = await listing_store.list_images(ctx.store.reader, listing_id)
    assert len(rows) == 1
    assert await media_files(ctx, listing_id) == [rows[0].filename]
    listing = await (await client.get(f"/api/v1/listings/{listing_id}", headers=headers)).json()
    assert len(listing["signed_object"]["image"]) == 1
    assert listing["version"] == 2


async def test_add_image__edit_during_decode_is_409_and_leaves_no_row_or_file(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext
) -> None:
    # Given an upload waiting for the decoder
    await ctx.images.gate.acquire()
    upload = asyncio.create_task(client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(picture()), headers=alice.headers))
    await wait_until(lambda: ctx.images.waiting == 1)
    # When the author edits the listing meanwhile
    edit = await client.patch(f"/api/v1/listings/{listing_id}",
                              json={"title": "Covoiturage vers Lyon, nouveau départ"},
                              headers=alice.headers)
    assert edit.status == 200
    ctx.images.gate.release()
    # Then the upload conflicts and nothing of it stays
    assert (await upload).status == 409
    assert await image_count(ctx, listing_id) == 0
    assert await media_files(ctx, listing_id) == []


async def test_add_image__uploads_beyond_the_concurrent_cap_are_503_with_retry_after(
    aiohttp_client, tmp_path: Path, clock: FakeClock  # type: ignore[no-untyped-def]
) -> None:
    app = create_app(make_config(tmp_path / "node", max_concurrent_uploads=1), clock=clock)
    client: TestClient = await aiohttp_client(app)
    ctx = app[CONTEXT]
    await members.add_member(ctx, username="alice", password=PASSWORD)
    headers = {"Authorization": f"Bearer {(await members.create_token(ctx, 'alice')).secret}"}
    listing_id = (await (await client.post("/api/v1/listings", json=ride_listing(),
                                           headers=headers)).json())["id"]
    # Given one upload held in the decoder queue
    await ctx.images.gate.acquire()
    first = asyncio.create_task(client.post(f"/api/v1/listings/{listing_id}/images",
                                            data=form(picture()), headers=headers))
    await wait_until(lambda: ctx.images.waiting == 1)
    # When a second arrives, it is refused without being read or stored
    second = await client.post(f"/api/v1/listings/{listing_id}/images",
                               data=form(picture()), headers=headers)
    assert second.status == 503
    assert second.headers["Retry-After"] == "5"
    assert (await second.json())["error"] == "busy"
    ctx.images.gate.release()
    assert (await first).status == 201
    assert await image_count(ctx, listing_id) == 1


async def test_startup__media_files_no_row_names_are_removed_and_used_ones_kept(
    aiohttp_client, client: TestClient, alice: TestMember, listing_id: str,  # type: ignore[no-untyped-def]
    ctx: NodeContext, clock: FakeClock
) -> None:
    added = await (await client.post(f"/api/v1/listings/{listing_id}/images",
                                     data=form(picture()), headers=alice.headers)).json()
    kept = f"{added['images'][0]['id']}.jpg"
    folder = ctx.config.media_dir / listing_id
    # Given files left by a crash between writing a file and committing its row
    (folder / "0123456789abcdef.jpg").write_bytes(b"orphan")
    (folder / ".fedcba9876543210.jpg.tmp").write_bytes(b"half written")
    (ctx.config.media_dir / "no-such-listing").mkdir()
    (ctx.config.media_dir / "no-such-listing" / "aa.jpg").write_bytes(b"orphan")
    # When the node starts again on the same data directory
    await aiohttp_client(create_app(ctx.config, clock=clock))
    # Then only the file a row names is left
    assert await media_files(ctx, listing_id) == [kept]
    assert not (ctx.config.media_dir / "no-such-listing").exists()


async def test_add_image__a_decoding_child_past_its_timeout_is_503_and_the_node_serves_on(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given decoding children that never answer, and a decoder waiting 1 s for each
    monkeypatch.setattr(images, "CHILD_CODE", "import time; time.sleep(120)")
    monkeypatch.setattr(ctx.images, "timeout", 1.0)
    # When a member uploads a photo
    response = await client.post(f"/api/v1/listings/{listing_id}/images",
                                 data=form(picture()), headers=alice.headers)
    # Then the upload is refused as busy, to be retried, and nothing of it is stored
    assert response.status == 503
    assert response.headers["Retry-After"] == "30"
    assert await image_count(ctx, listing_id) == 0
    assert await media_files(ctx, listing_id) == []
    assert not ctx.images.children
    # And the node serves on: its pages, and the next upload once children answer again
    assert (await client.get("/healthz")).status == 200
    monkeypatch.undo()
    again = await client.post(f"/api/v1/listings/{listing_id}/images",
                              data=form(picture()), headers=alice.headers)
    assert again.status == 201


async def test_add_image__a_decoding_child_flooding_its_stdout_is_415_and_nothing_is_kept(
    client: TestClient, alice: TestMember, listing_id: str, ctx: NodeContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given decoding children taken over (a decoder exploit) that write on stdout for ever
    monkeypatch.setattr(images, "CHILD_CODE", "import sys\n"
                        "while True: sys.stdout.buffer.write(b'x' * 65536)")
    # When a member uploads a photo
    response = await client.post(f"/api/v1/listings/{listing_id}/images",
                                 data=form(picture()), headers=alice.headers)
    # Then the upload is refused as an unreadable image once the child passed the answer's
    # cap (the file took the decoder over: the sender's fault, never a 5xx), and nothing of
    # it is stored; the child is gone and the decoder free
    assert response.status == 415
    assert await image_count(ctx, listing_id) == 0
    assert await media_files(ctx, listing_id) == []
    assert not ctx.images.children
    assert not ctx.images.gate.locked()
    # And the next upload, once children answer again, is stored
    monkeypatch.undo()
    again = await client.post(f"/api/v1/listings/{listing_id}/images",
                              data=form(picture()), headers=alice.headers)
    assert again.status == 201
    assert await image_count(ctx, listing_id) == 1
