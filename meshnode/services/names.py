"""Names instead of URLs: members and communities as ``{name, handle, actor}``.

Remote names come from actor documents cached with their fetch time
(``federation/names.py`` refreshes them); they were cleaned before being stored
(``protocol/names.clean_text``) and are cleaned again here, so an older row cannot slip
through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshnode import urls
from meshnode.protocol.ledger import JournalEntry
from meshnode.protocol.names import Party, clean_text, handle_of, host_of, remote_party
from meshnode.services.context import NodeContext
from meshnode.store import trust as trust_q
from meshnode.store.listings import ListingRow

NODE_ACCOUNT_PREFIX = "node:"


@dataclass(frozen=True)
class ListingParties:
    """Who wrote a listing and in which community."""

    author: Party
    community: Party


def our_community(ctx: NodeContext) -> Party:
    """This node's community."""
    base = ctx.config.base_url
    return Party(name=clean_text(ctx.config.name), handle=handle_of(ctx.config.handle, base),
                 actor=urls.community_actor(base, ctx.config.handle))


def local_member(ctx: NodeContext, username: str, display_name: str) -> Party:
    """A member of this node."""
    base = ctx.config.base_url
    handle = handle_of(username, base)
    return Party(name=clean_text(display_name) or username, handle=handle,
                 actor=urls.member_actor(base, username))


async def display_names(ctx: NodeContext, usernames: Iterable[str]) -> dict[str, str]:
    """Local members' display names by username, kept until anything is committed (the
    same few authors fill most pages)."""
    unique = tuple(sorted(set(usernames)))
    if not unique:
        return {}
    return await ctx.cached(("display_names", unique), lambda: trust_q.member_display_names(
        ctx.store.reader, unique))


async def peer_actors(ctx: NodeContext) -> dict[str, str]:
    """Origin -> its community actor (``store.trust.peer_actors``), kept until anything is
    committed. Callers only read the dict."""
    return await ctx.cached(("peer_actors",), lambda: trust_q.peer_actors(ctx.store.reader))


async def remote_parties(ctx: NodeContext, actor_ids: Iterable[str]) -> dict[str, Party]:
    """Remote actors by id, named from the cache (the URL's last segment when not cached)."""
    ids = tuple(sorted(set(actor_ids)))
    if not ids:
        return {}
    cached = await ctx.cached(("actor_names", ids), lambda: trust_q.actor_names(
        ctx.store.reader, ids))
    parties = {}
    for actor_id in ids:
        row = cached.get(actor_id)
        parties[actor_id] = remote_party(actor_id, name=row.name if row else "",
                                         username=row.username if row else "")
    return parties


async def communities_by_origin(ctx: NodeContext, origins: Iterable[str]) -> dict[str, Party]:
    """Peer communities by origin (``http://host:port``), named from their Group actor."""
    wanted = set(origins)
    if not wanted:
        return {}
    actors = {origin: actor for origin, actor in
              (await peer_actors(ctx)).items() if origin in wanted}
    named = await remote_parties(ctx, actors.values())
    found = {}
    for origin in wanted:
        actor = actors.get(origin)
        found[origin] = (named[actor] if actor else
                         Party(name=host_of(origin), handle=host_of(origin), actor=origin))
    return found


async def listing_parties(ctx: NodeContext,
                          rows: Sequence[ListingRow]) -> dict[str, ListingParties]:
    """Author and community of each listing: a few queries for a whole page."""
    local = await member_parties(
        ctx, [row.author_username for row in rows if row.is_local and row.author_username])
    ours = our_community(ctx)
    remote = [row for row in rows if not row.is_local]
    authors = await remote_parties(ctx, [row.author_uri for row in remote])
    communities = await communities_by_origin(ctx, [row.origin for row in remote])
    found = {}
    for row in rows:
        if row.is_local and row.author_username:
            author = (local.get(row.author_username)
                      or local_member(ctx, row.author_username, ""))
            found[row.id] = ListingParties(author, ours)
        else:
            found[row.id] = ListingParties(authors.get(row.author_uri) or
                                           remote_party(row.author_uri, name="", username=""),
                                           communities.get(row.origin, ours))
    return found


async def member_parties(ctx: NodeContext, usernames: Iterable[str]) -> dict[str, Party]:
    """Our members among ``usernames`` (those with an account row) by username, made once
    and kept until anything is committed: a page of cards or the wallet's history names the
    same few people on every page (issue 17). Callers only read the dict."""
    unique = tuple(sorted(set(usernames)))

    async def load() -> dict[str, Party]:
        names = await trust_q.member_display_names(ctx.store.reader, unique)
        return {username: local_member(ctx, username, name) for username, name in names.items()}

    return await ctx.cached(("member_parties", unique), load) if unique else {}


async def account_parties(ctx: NodeContext, accounts: Iterable[str]) -> dict[str, Party]:
    """Ledger account names → who they are: members by username, ``node:host[:port]``
    accounts as the community on the other side of the trust line."""
    names = set(accounts)
    found = dict(await member_parties(ctx, [name for name in names if ":" not in name]))
    nodes = {name: name.removeprefix(NODE_ACCOUNT_PREFIX) for name in names
             if name.startswith(NODE_ACCOUNT_PREFIX)}
    peers = await peer_actors(ctx)
    by_host = {host_of(origin): origin for origin in peers}
    communities = await communities_by_origin(
        ctx, [by_host[host] for host in nodes.values() if host in by_host])
    for account, host in nodes.items():
        origin = by_host.get(host)
        if origin is not None:
            found[account] = communities[origin]
    return found


@dataclass(frozen=True)
class OtherSide:
    """Who is on the other side of a wallet history line."""

    person: Party | None
    community: Party | None


def _remote_person(ctx: NodeContext, ends: tuple[str, str] | None, me: str) -> str | None:
    """The remote actor of a cross-node transfer: the end that is not one of our members."""
    if ends is None:
        return None
    ours = urls.member_actor(ctx.config.base_url, "")
    for end in ends:
        if end != me and "://" in end and not end.startswith(ours):
            return end
    return None


async def history_names(ctx: NodeContext, username: str,
                        entries: Sequence[JournalEntry]) -> dict[str, OtherSide]:
    """For each journal entry of ``username``'s history: the person and community on the
    other side (a cross-node payment names the remote member and their community)."""
    others = {entry.fields.id: (entry.fields.payee if entry.fields.payer == username
                                else entry.fields.payer) for entry in entries}
    accounts = await account_parties(ctx, others.values())
    crossing = [entry_id for entry_id, account in others.items()
                if account.startswith(NODE_ACCOUNT_PREFIX)]
    ends = await trust_q.transfer_ends(ctx.store.reader, crossing)
    me = urls.member_actor(ctx.config.base_url, username)
    remote_ids = {entry_id: _remote_person(ctx, ends.get(entry_id), me)
                  for entry_id in crossing}
    people = await remote_parties(ctx, [a for a in remote_ids.values() if a])
    found = {}
    for entry_id, account in others.items():
        if entry_id in remote_ids:
            actor = remote_ids[entry_id]
            found[entry_id] = OtherSide(people.get(actor) if actor else None,
                                        accounts.get(account))
        else:
            found[entry_id] = OtherSide(accounts.get(account), None)
    return found


async def actor_parties(ctx: NodeContext, actor_ids: Iterable[str]) -> dict[str, Party]:
    """Any actors (our members' or remote) by id, as pages name them."""
    ids = set(actor_ids)
    prefix = urls.member_actor(ctx.config.base_url, "")
    local = {actor: actor[len(prefix):] for actor in ids
             if actor.startswith(prefix) and "/" not in actor[len(prefix):]}
    display = await display_names(ctx, local.values())
    found = await remote_parties(ctx, ids - set(local))
    for actor, username in local.items():
        found[actor] = local_member(ctx, username, display.get(username, ""))
    return found
