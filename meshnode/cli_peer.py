"""``meshnode peer …``: peering from the command line, also while the node runs.

The commands only write intent rows (a peer to resolve, an Accept or Undo to deliver) in
the node's database; the running node's peering and delivery workers do the network I/O.
So the CLI never needs the node's lock, never races the node's own HTTP client, and an
admin's request survives a node that is down: it happens when the node next runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from meshnode.cli_support import run_with_context
from meshnode.federation import blocking, peering
from meshnode.services import node_blocks
from meshnode.services.context import NodeContext

PeerAction = Callable[[NodeContext, str], Awaitable[str]]


def cmd_peer_add(args: argparse.Namespace) -> int:
    """``meshnode peer add URL_OR_HANDLE``."""

    async def action(ctx: NodeContext) -> int:
        key = await peering.add_peer(ctx, args.target)
        print(f"peering requested with {key}; the running node resolves and follows it"
              " (see 'meshnode peer list')")
        return 0

    return run_with_context(args.data_dir, action)


def cmd_peer_list(args: argparse.Namespace) -> int:
    """``meshnode peer list``."""

    async def action(ctx: NodeContext) -> int:
        print(f"{'PEER':<40} {'STATUS':<8} {'OURS':<10} {'THEIRS':<9} {'LAST DELIVERY':<21}"
              " LAST SYNC")
        for peer in await peering.list_peers(ctx):
            print(f"{peer.peer:<40} {peer.status:<8} {peer.ours:<10} {peer.theirs or '-':<9}"
                  f" {peer.last_delivery or '-':<21} {peer.last_sync or '-'}")
            if peer.last_error:
                print(f"    last error: {peer.last_error}")
        return 0

    return run_with_context(args.data_dir, action)


def _print_preview(preview: node_blocks.BlockPreview) -> None:
    print(f"blocking {preview.origin}:")
    print(f"  listings hidden (shown again if you unblock): {preview.listings_hidden}")
    for deal in preview.deals:
        print(f"  deal {deal.id} ({deal.state}, paid {deal.paid}, held here {deal.held}):"
              f" {deal.action}")
    for line in preview.lines:
        print(f"  trust line {line.id} ({line.state}, balance {line.balance}):"
              f" {'frozen' if line.freeze else 'unchanged'}")
    print(f"  conversations with its members: {preview.conversations}"
          f" ({preview.messages} messages; no more messages either way)")


def cmd_peer_block(args: argparse.Namespace) -> int:
    """``meshnode peer block URL [--yes]``: show what blocking the node would do (listings
    hidden, deals cancelled with refunds, trust line frozen); only ``--yes`` applies it, as
    the admin page's preview and confirmation do (docs/moderation.md)."""

    async def action(ctx: NodeContext) -> int:
        origin = await blocking.block_key(ctx, args.peer)
        _print_preview(await node_blocks.preview(ctx, origin))
        if not args.yes:
            print("nothing changed: run the same command with --yes to block")
            return 0
        await blocking.block_node(ctx, None, origin, confirm=True)
        print(f"blocked {origin} (undo: the admin peers page or POST /api/v1/blocks/undo)")
        return 0

    return run_with_context(args.data_dir, action)


def _simple(action: PeerAction, verb: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        async def run(ctx: NodeContext) -> int:
            print(f"{verb} {await action(ctx, args.peer)}")
            return 0
        return run_with_context(args.data_dir, run)
    return handler


def add_peer_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                      data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``meshnode peer add|list|approve|remove|block``."""
    parser = commands.add_parser("peer", help="peer with other community nodes")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="follow a node: URL or handle@host[:port]")
    data_dir(add)
    add.add_argument("target", metavar="URL_OR_HANDLE")
    add.set_defaults(handler=cmd_peer_add)
    listing = sub.add_parser("list", help="peers: pending, peered, blocked; last delivery/sync")
    data_dir(listing)
    listing.set_defaults(handler=cmd_peer_list)
    for name, action, verb in (("approve", peering.approve_peer, "approved"),
                               ("remove", peering.remove_peer, "removed")):
        command = sub.add_parser(name, help=f"{name} a peer (origin URL or handle)")
        data_dir(command)
        command.add_argument("peer")
        command.set_defaults(handler=_simple(action, verb))
    block = sub.add_parser("block", help="show what blocking a node does; --yes blocks it")
    data_dir(block)
    block.add_argument("peer", metavar="NODE_URL")
    block.add_argument("--yes", action="store_true",
                       help="apply: hide its listings, end open deals, freeze the line")
    block.set_defaults(handler=cmd_peer_block)
