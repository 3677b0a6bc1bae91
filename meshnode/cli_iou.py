"""``meshnode trustline …``: trust lines from the command line, also while the node runs.

Like ``meshnode peer``, the commands only write rows (an offer to send, an answer or an
update queued in the outbox); the running node's IOU and delivery workers do the network I/O.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from meshnode.cli_support import run_with_context
from meshnode.services import iou
from meshnode.services.context import NodeContext
from meshnode.store.iou import LineRow


def _describe(line: LineRow) -> str:
    return f"{line.id} {line.state} {line.peer_actor or line.requested}"


def cmd_propose(args: argparse.Namespace) -> int:
    """``meshnode trustline propose --peer P --limit-out N --limit-in N --rate R``."""

    async def action(ctx: NodeContext) -> int:
        line = await iou.propose_line(ctx, None, peer=args.peer, limit_out=args.limit_out,
                                      limit_in=args.limit_in, rate=args.rate)
        print(f"trust line {line.id} proposed to {args.peer}; the running node sends the offer"
              " (see 'meshnode trustline list')")
        return 0

    return run_with_context(args.data_dir, action)


def cmd_list(args: argparse.Namespace) -> int:
    """``meshnode trustline list``."""

    async def action(ctx: NodeContext) -> int:
        print(f"{'ID':<25} {'STATE':<9} {'ROLE':<9} {'OUT':>12} {'IN':>12} {'RATE':>8}"
              f" {'BALANCE':>12} PEER")
        for line in await iou.list_lines(ctx):
            report = await iou.line_report(ctx, line)
            print(f"{line.id:<25} {line.state:<9} {report['role']:<9} {report['limit_out']:>12}"
                  f" {report['limit_in']:>12} {line.rate:>8} {report['balance'] or '-':>12}"
                  f" {report['peer']}")
            rec = report["reconciliation"]
            if rec is not None and rec["status"] != "match":
                print(f"    reconciliation: {rec['status']}: {rec['detail']}")
            if line.last_error:
                print(f"    last error: {line.last_error}")
        return 0

    return run_with_context(args.data_dir, action)


def _simple(verb: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        async def action(ctx: NodeContext) -> int:
            if verb == "accept":
                line = await iou.accept_line(ctx, None, args.id)
            elif verb == "reject":
                line = await iou.reject_line(ctx, None, args.id)
            else:
                line = await iou.change_line(ctx, None, args.id, verb)
            print(_describe(line))
            return 0
        return run_with_context(args.data_dir, action)
    return handler


def add_trustline_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                           data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``meshnode trustline propose|list|accept|reject|freeze|unfreeze|close``."""
    parser = commands.add_parser("trustline", help="IOU trust lines with other communities")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    propose = sub.add_parser("propose", help="offer a trust line to a peer node")
    data_dir(propose)
    propose.add_argument("--peer", required=True, metavar="URL_OR_HANDLE")
    propose.add_argument("--limit-out", required=True,
                         help="most we may owe them, in our currency")
    propose.add_argument("--limit-in", required=True,
                         help="most they may owe us, in our currency")
    propose.add_argument("--rate", required=True,
                         help="their units per one of ours, an exact decimal (e.g. 1.5)")
    propose.set_defaults(handler=cmd_propose)
    listing = sub.add_parser("list", help="trust lines, balances, reconciliation")
    data_dir(listing)
    listing.set_defaults(handler=cmd_list)
    for verb in ("accept", "reject", "freeze", "unfreeze", "close"):
        command = sub.add_parser(verb, help=f"{verb} a trust line")
        data_dir(command)
        command.add_argument("id")
        command.set_defaults(handler=_simple(verb))
