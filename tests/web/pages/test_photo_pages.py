"""The photo form on a listing's edit page: the same image limits as the API, in French."""

from __future__ import annotations

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride
from tests.web.test_api_images import picture

FR = {**HTML, "Accept-Language": "fr-FR,fr;q=0.9"}


async def send_photo(client: TestClient, listing_id: str, data: bytes) -> tuple[int, str]:
    token = await csrf_of(client, f"/listings/{listing_id}/edit")
    payload = FormData()
    payload.add_field("csrf", token)
    payload.add_field("alt", "la voiture")
    payload.add_field("photo", data, filename="photo.png", content_type="image/png")
    response = await client.post(f"/listings/{listing_id}/photos", data=payload, headers=FR,
                                 allow_redirects=False)
    return response.status, await response.text()


async def test_add_photo__picture_is_attached_and_the_author_goes_back_to_editing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "alice")
    status, _ = await send_photo(client, listing_id, picture())
    assert status == 303
    [row] = await listing_store.list_images(ctx.store.reader, listing_id)
    assert (ctx.config.media_dir / listing_id / row.filename).is_file()


async def test_add_photo__png_over_the_decode_budget_is_refused_in_french_and_not_kept(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    # Given a 12 Mpx RGBA PNG: a few kilobytes, about 120 MB to decode
    listing_id = await make_ride(ctx, alice)
    await login(client, "alice")
    status, text = await send_photo(client, listing_id, picture("PNG", (4000, 3000),
                                                                mode="RGBA"))
    # Then the page says why in French, and nothing was stored
    assert status == 400
    assert "image trop grande pour être traitée ici" in text
    assert await listing_store.list_images(ctx.store.reader, listing_id) == []
    assert not (ctx.config.media_dir / listing_id).exists()
