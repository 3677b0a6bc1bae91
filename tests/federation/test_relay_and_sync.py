"""Three and four real nodes: relaying within the hop limit, catch-up, a peer down and back."""

from __future__ import annotations

from meshnode.federation import blocking, peering
from meshnode.services import listings, members
from tests.federation.conftest import NodeFactory, peer, settle


async def test_relay__reaches_third_node_within_hop_limit_and_not_beyond(
    make_node: NodeFactory,
) -> None:
    # Given a chain a — b — c — d (hop limit 2 everywhere)
    a, b, c, d = [await make_node(h) for h in ("alpha", "beta", "gamma", "delta")]
    await peer(a, b, c, d)
    await peer(b, c, a, d)
    await peer(c, d, a, b)
    alice = await a.member("alice")
    # When alice publishes on a
    view = await a.publish(alice)
    await settle(a, b, c, d)
    # Then b (hop 1) and c (hop 2) have it, with the author's proof intact; d does not
    for node in (b, c):
        row = await node.remote(view.row.object_id)
        assert row is not None
        assert row.signed_object == view.row.signed_object
    assert await d.remote(view.row.object_id) is None
    # And updates follow the same path
    a.clock.advance(seconds=3)
    await listings.withdraw_listing(a.ctx, alice, view.row.id)
    await settle(a, b, c, d)
    row = await c.remote(view.row.object_id)
    assert row is not None
    assert row.status == "withdrawn"


async def test_relay__triangle_has_no_loops_or_duplicates(make_node: NodeFactory) -> None:
    a, b, c = [await make_node(h) for h in ("alpha", "beta", "gamma")]
    await peer(a, b, c)
    await peer(b, c, a)
    await peer(c, a, b)
    alice = await a.member("alice")
    view = await a.publish(alice)
    await settle(a, b, c)
    for node in (b, c):
        assert await node.count("SELECT count(*) FROM listing_versions v JOIN listings l"
                                " ON l.id = v.listing_id WHERE l.object_id = ?",
                                view.row.object_id) == 1
    assert await a.count("SELECT count(*) FROM listings") == 1


async def test_catch_up__restarted_node_pulls_missed_listings(make_node: NodeFactory) -> None:
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    kept = await a.publish(alice)
    await settle(a, b)
    # b goes offline; a publishes, edits and withdraws meanwhile
    await b.stop()
    fresh = await a.publish(alice, title="Vélo cargo à prêter")
    a.clock.advance(seconds=2)
    await listings.update_listing(a.ctx, alice, kept.row.id, {"title": "Trajet modifié"})
    a.clock.advance(seconds=2)
    await listings.withdraw_listing(a.ctx, alice, fresh.row.id)
    await a.workers.delivery.step()  # pushes fail: b is down
    # b restarts: it catches up from a's outbox without any push
    await b.start()
    assert await b.workers.sync.step() >= 3
    row = await b.remote(kept.row.object_id)
    assert row is not None
    assert row.title == "Trajet modifié"
    gone = await b.remote(fresh.row.object_id)
    assert gone is not None
    assert gone.status == "withdrawn"
    assert (await peering.list_peers(b.ctx))[0].last_sync is not None


async def test_delivery__peer_down_then_back_receives_its_deliveries(
    make_node: NodeFactory,
) -> None:
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    await b.stop()
    view = await a.publish(alice)
    assert await a.workers.delivery.step() == 1
    assert await a.count("SELECT count(*) FROM deliveries WHERE state = 'pending'"
                         " AND attempts = 1") == 1
    await b.start()
    assert await a.workers.delivery.step() == 0  # not due yet: backoff
    a.clock.advance(seconds=120)
    assert await a.workers.delivery.step() == 1
    await b.workers.inbox.step()
    assert await b.remote(view.row.object_id) is not None
    assert await a.count("SELECT count(*) FROM deliveries WHERE state = 'done'") >= 1


async def test_peering__approve_policy_waits_for_admin(make_node: NodeFactory) -> None:
    a = await make_node("alpha")
    b = await make_node("beta", peering_policy="approve")
    await peer(a, b)
    status = {p.peer: p for p in await peering.list_peers(b.ctx)}
    assert status[a.url].status == "pending"
    await peering.approve_peer(b.ctx, a.url)
    await settle(a, b)
    status = {p.peer: p for p in await peering.list_peers(b.ctx)}
    assert status[a.url].status == "peered"
    assert status[a.url].ours == "peered"


async def test_peering__block_hides_listings_and_refuses(make_node: NodeFactory) -> None:
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    view = await a.publish(alice)
    await settle(a, b)
    assert await b.remote(view.row.object_id) is not None
    admin = await members.add_member(b.ctx, username="admin", password=None, is_admin=True)
    await blocking.block_node(b.ctx, admin, a.url, confirm=True)
    stored = await b.remote(view.row.object_id)
    assert stored is not None, "kept: an unblock shows it again"
    assert stored.hidden
    await a.publish(alice, title="Encore une annonce")
    await settle(a, b)
    assert await b.count("SELECT count(*) FROM listings WHERE is_local = 0") == 1
    assert [p.status for p in await peering.list_peers(b.ctx)] == ["blocked"]


async def test_peering__by_handle_resolved_with_webfinger(make_node: NodeFactory) -> None:
    a = await make_node("alpha")
    b = await make_node("beta")
    host = b.url.removeprefix("http://")
    await peering.add_peer(a.ctx, f"beta@{host}")
    await settle(a, b)
    status = {p.peer: p for p in await peering.list_peers(a.ctx)}
    assert status[b.url].status == "peered"


async def test_relay__a_relay_outrunning_the_author_still_makes_its_peer_a_first_hop(
    make_node: NodeFactory,
) -> None:
    # Given a — b — c, and x peered with both a and b (found by scripts/simulate.py: after a
    # partition healed, b heard an edit from x's relay before a's own Update, and c never got it)
    a, b, c, x = [await make_node(h) for h in ("alpha", "beta", "gamma", "xi")]
    await peer(a, b, c, x)
    await peer(a, x, b, c)
    await peer(x, b, a, c)
    await peer(b, c, a, x)
    alice = await a.member("alice")
    view = await a.publish(alice)
    # When a's delivery reaches x first and x's relay (hops 2) reaches b before a's Create
    x_host = next(host for host in await a.workers.delivery.federation.ctx.store.reader
                  .execute_fetchall("SELECT DISTINCT host FROM deliveries WHERE state ="
                                    " 'pending'") if str(x.config.port) in host[0])[0]
    await a.workers.delivery.run_host(x_host)
    await x.workers.inbox.step()
    await x.workers.delivery.step()
    await b.workers.inbox.step()
    await settle(a, b, c, x)
    # Then b relayed it as a's first hop, so c (two hops from a) has it
    assert await b.remote(view.row.object_id) is not None
    assert await c.remote(view.row.object_id) is not None


async def test_catch_up__a_failed_pull_waits_five_minutes_instead_of_every_poll(
    make_node: NodeFactory,
) -> None:
    from meshnode.federation.sync import SYNC_INTERVAL, SYNC_RETRY
    from meshnode.protocol.timefmt import format_utc
    from meshnode.store import federation as fq
    # Given a peered with b, then b down and a's catch-up from b due again
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    await b.stop()
    a.clock.advance(seconds=SYNC_INTERVAL.total_seconds() + 1)

    async def due() -> int:
        stale = format_utc(a.clock() - SYNC_INTERVAL)
        retry = format_utc(a.clock() - SYNC_RETRY)
        return len(await fq.peers_to_sync(a.ctx.store.reader, stale, retry))

    assert await due() == 1
    # When the pull fails
    await a.workers.sync.step()
    # Then the peer is not pulled again at the next polls (the simulator saw a storm of them)...
    assert (await peering.list_peers(a.ctx))[0].last_error is not None
    a.clock.advance(seconds=60)
    assert await due() == 0
    # ...but again five minutes later
    a.clock.advance(seconds=SYNC_RETRY.total_seconds())
    assert await due() == 1


async def test_catch_up__activities_already_pushed_are_skipped_by_id_not_downloaded(
    make_node: NodeFactory,
) -> None:
    from meshnode.federation.sync import SYNC_INTERVAL
    # Given b received a's listings by push
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    views = [await a.publish(alice, title=f"Trajet {n}") for n in range(3)]
    await settle(a, b)
    fetched: list[tuple[str, int]] = []
    real_get = b.fed.client.get_json

    async def recording_get(url: str, **kwargs: object) -> object:
        document = await real_get(url, **kwargs)  # type: ignore[arg-type]
        items = document.get("orderedItems") if isinstance(document, dict) else None
        fetched.append((url, len(items or [])))
        return document

    b.fed.client.get_json = recording_get  # type: ignore[method-assign]
    # When b's periodic catch-up from a runs
    b.clock.advance(seconds=SYNC_INTERVAL.total_seconds() + 1)
    await b.workers.sync.step()
    # Then only id summaries were read: no full page carried an activity again
    assert any("summary=1" in url for url, _ in fetched)
    outbox_pages = [(url, count) for url, count in fetched if "/outbox" in url]
    assert outbox_pages  # (the other read is the peer's public following, for the map)
    assert all(count == 0 for url, count in outbox_pages if "summary=1" not in url)
    # And a listing published while pushes fail still arrives by a full page
    await b.stop()
    missed = await a.publish(alice, title="Publié pendant la panne")
    await a.workers.delivery.step()
    await b.start()
    await b.workers.sync.step()
    assert await b.remote(missed.row.object_id) is not None
    assert all([await b.remote(view.row.object_id) for view in views])
