"""The ``meshnode`` command line. It parses arguments and calls services; no logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from meshnode import __version__
from meshnode.cli_iou import add_trustline_commands
from meshnode.cli_peer import add_peer_commands
from meshnode.cli_support import run_with_context
from meshnode.config import Config, ConfigError, load_config, validate_handle, validate_public_url
from meshnode.errors import ServiceError
from meshnode.keys import KeyStoreError
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ProtocolError
from meshnode.services import ledger, members
from meshnode.services.context import NodeContext
from meshnode.services.memory import defer_ca_certificates, prefer_pure_frozenlist
from meshnode.services.node import (
    NodeBusyError,
    backup_database,
    exclusive_lock,
    init_node,
    restore_database,
)
from meshnode.store import StoreError

# ``meshnode demo``'s default (meshnode/demo.py is imported only by that command).
DEFAULT_DEMO_DIR = Path("meshnode-demo")
log = logging.getLogger("meshnode")
EXPECTED_ERRORS = (
    ConfigError, ServiceError, ProtocolError, StoreError, KeyStoreError, NodeBusyError, OSError,
)


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, required=True, metavar="DIR",
        help="the node's data directory (config.toml, database, keys, media)",
    )


def _add_init(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("init", help="create a new node in a data directory")
    _data_dir(parser)
    parser.add_argument("--name", required=True, help='community name, e.g. "Les Voisins du Canal"')
    parser.add_argument("--handle", required=True, help="community handle, e.g. voisins")
    parser.add_argument("--url", required=True, help="public URL, e.g. http://192.168.1.20:8080")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="bind port (default: from --url)")
    parser.add_argument("--locale", choices=("fr", "en"), default="fr", help="default language")
    parser.add_argument("--quiet", action="store_true",
                        help="do not print the next steps (for scripts that take them)")
    parser.set_defaults(handler=cmd_init)


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("run", help="serve the node until SIGINT/SIGTERM")
    _data_dir(parser)
    parser.add_argument("--host", help="override the configured bind address")
    parser.add_argument("--port", type=int, help="override the configured bind port")
    parser.add_argument("--access-log", action="store_true",
                        help="log every HTTP request (off by default to spare SD cards)")
    parser.set_defaults(handler=cmd_run)


def _add_member(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("member", help="manage members")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add a member (with fresh signing keys)")
    _data_dir(add)
    add.add_argument("--username", required=True)
    add.add_argument("--display-name", default="")
    add.add_argument("--admin", action="store_true", help="make the member an administrator")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (else prompt)")
    add.set_defaults(handler=cmd_member_add)
    listing = sub.add_parser("list", help="list members")
    _data_dir(listing)
    listing.set_defaults(handler=cmd_member_list)
    for name, disabled in (("disable", True), ("enable", False)):
        action = sub.add_parser(name, help=f"{name} a member")
        _data_dir(action)
        action.add_argument("--username", required=True)
        action.set_defaults(handler=cmd_member_disable, disabled=disabled)


def _add_token(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("token", help="manage JSON API tokens")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="print a new bearer token for a member")
    _data_dir(create)
    create.add_argument("--username", required=True)
    create.add_argument("--label", default="", help="a note to recognise the token later")
    create.set_defaults(handler=cmd_token_create)
    revoke = sub.add_parser("revoke", help="revoke one token, or all tokens of a member")
    _data_dir(revoke)
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--token-id", help="the id printed by 'token create'")
    target.add_argument("--username", help="revoke every token of this member")
    revoke.set_defaults(handler=cmd_token_revoke)


def _add_backup(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser("backup", help="consistent online copy of the database")
    _data_dir(backup)
    backup.add_argument("--to", type=Path, required=True, metavar="FILE")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser("restore", help="put a backup back (stop the node first)")
    _data_dir(restore)
    restore.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE")
    restore.set_defaults(handler=cmd_restore)


def _add_ledger(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("ledger", help="check the mutual-credit ledger")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = sub.add_parser(
        "verify", help="prove no journal entry was altered, removed or reordered (exit 0 if so)"
    )
    _data_dir(verify)
    verify.add_argument("--skip-signatures", action="store_true",
                        help="check hashes and balances only (faster)")
    verify.set_defaults(handler=cmd_ledger_verify)
    summary = sub.add_parser("summary", help="totals, activity and members near their limits")
    _data_dir(summary)
    summary.set_defaults(handler=cmd_ledger_summary)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo", help="see it work: several seeded nodes on 127.0.0.1 that find each other",
    )
    parser.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    parser.add_argument("--base-port", type=int, default=8080,
                        help="port of the first node; node N (1, 2, ...) listens on base-port+N-1")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DEMO_DIR, metavar="DIR",
                        help="where the nodes keep their data; reuse it to resume "
                             f"(default ./{DEFAULT_DEMO_DIR})")
    parser.set_defaults(handler=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser (every command has ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="meshnode",
        description="A community node of the meshnode sharing network.",
    )
    parser.add_argument("--version", action="version", version=f"meshnode {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_init, _add_run, _add_member, _add_token, _add_backup, _add_ledger,
                _add_demo):
        add(commands)
    add_peer_commands(commands, _data_dir)
    add_trustline_commands(commands, _data_dir)
    return parser


# --- command handlers -----------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """``meshnode init``."""
    url = validate_public_url(args.url)
    validate_handle(args.handle)
    port = args.port
    if port is None:
        port = urlsplit(url).port or 8080
    config = init_node(Config(
        data_dir=args.data_dir, name=args.name.strip(), handle=args.handle, public_url=url,
        host=args.host, port=port, default_locale=args.locale,
    ))
    print(f"created node {config.name!r} (@{config.handle}) in {config.data_dir}")
    if not args.quiet:
        print(f"next: meshnode member add --data-dir {args.data_dir} --username YOU --admin")
        print(f"then: meshnode run --data-dir {args.data_dir}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``meshnode run``."""
    config = load_config(args.data_dir).with_overrides(host=args.host, port=args.port)
    prefer_pure_frozenlist()  # before aiohttp is imported: by meshnode.serve, just below
    defer_ca_certificates()  # likewise: aiohttp makes its default TLS context at import
    from meshnode.serve import serve  # the server: aiohttp is imported by this command only

    with exclusive_lock(config.data_dir):
        asyncio.run(serve(config, access_log=args.access_log))
    return 0


def _with_context(
    args: argparse.Namespace, action: Callable[[NodeContext], Awaitable[int]]
) -> int:
    return run_with_context(args.data_dir, action)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


def cmd_member_add(args: argparse.Namespace) -> int:
    """``meshnode member add``."""
    members.check_username(args.username)
    password = _read_password(args.password_stdin)

    async def action(ctx: NodeContext) -> int:
        member = await members.add_member(
            ctx, username=args.username, password=password, is_admin=args.admin,
            display_name=args.display_name,
        )
        role = "admin" if member.is_admin else "member"
        print(f"added {role} {member.username}")
        return 0

    return _with_context(args, action)


def cmd_member_list(args: argparse.Namespace) -> int:
    """``meshnode member list``."""

    async def action(ctx: NodeContext) -> int:
        print(f"{'USERNAME':<20} {'ROLE':<7} {'STATUS':<9} CREATED")
        for member in await members.list_members(ctx):
            role = "admin" if member.is_admin else "member"
            status = "active" if member.is_active else "disabled"
            print(f"{member.username:<20} {role:<7} {status:<9} {member.created_at}")
        return 0

    return _with_context(args, action)


def cmd_member_disable(args: argparse.Namespace) -> int:
    """``meshnode member disable`` / ``enable``."""

    async def action(ctx: NodeContext) -> int:
        member = await members.set_disabled(ctx, args.username, disabled=args.disabled)
        print(f"{member.username} is now {'disabled' if args.disabled else 'active'}")
        return 0

    return _with_context(args, action)


def cmd_token_create(args: argparse.Namespace) -> int:
    """``meshnode token create``: prints the token on stdout, alone, for scripts."""

    async def action(ctx: NodeContext) -> int:
        token = await members.create_token(ctx, args.username, label=args.label)
        print(f"token id {token.token_id} (keep the token secret; it is shown once)",
              file=sys.stderr)
        print(token.secret)
        return 0

    return _with_context(args, action)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """``meshnode token revoke``."""

    async def action(ctx: NodeContext) -> int:
        count = await members.revoke_tokens(ctx, token_id=args.token_id, username=args.username)
        print(f"revoked {count} token(s)")
        return 0 if count else 1

    return _with_context(args, action)


def cmd_backup(args: argparse.Namespace) -> int:
    """``meshnode backup``."""
    size = backup_database(load_config(args.data_dir), args.to)
    print(f"backup written to {args.to} ({size} bytes, mode 0600)")
    print("keep the keys/ directory safe too: member keys in the backup are sealed with it")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """``meshnode restore``."""
    upgraded = restore_database(load_config(args.data_dir), args.source)
    print(f"restored {args.source} into {args.data_dir}")
    if upgraded:
        print(f"upgraded the restored database with: {', '.join(upgraded)}")
    return 0


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    """``meshnode ledger verify``: exit 0 when the journal is intact, 2 otherwise."""

    async def action(ctx: NodeContext) -> int:
        result = await ledger.verify_journal(ctx, check_signatures=not args.skip_signatures)
        print(result.describe())
        return 0 if result.ok else 2

    return _with_context(args, action)


def cmd_ledger_summary(args: argparse.Namespace) -> int:
    """``meshnode ledger summary``."""

    async def action(ctx: NodeContext) -> int:
        summary = await ledger.ledger_summary(ctx)
        decimals = summary.decimals
        print(f"accounts: {summary.accounts}  transactions: {summary.transactions}")
        print(f"sum of balances: {format_amount(summary.balance_sum, decimals=decimals)}")
        print(f"total volume: {format_amount(summary.volume, decimals=decimals)}")
        print(f"active traders (30 days): {summary.active_traders}")
        print(f"journal verifies: {'yes' if summary.journal_ok else 'NO'}")
        for hit in summary.near_limits:
            print(f"near {hit.side} limit: {hit.account} "
                  f"{format_amount(hit.balance, decimals=decimals)} / "
                  f"{format_amount(hit.limit, decimals=decimals)}")
        return 0 if summary.journal_ok else 2

    return _with_context(args, action)


def cmd_demo(args: argparse.Namespace) -> int:
    """``meshnode demo``: runs until SIGINT/SIGTERM, then stops every node."""
    # Imported here: the seeding code and its sample data stay out of ``meshnode run``'s
    # memory (scripts/bench_memory.py).
    from meshnode.demo import run_demo

    node_level = "INFO" if args.log_level == "DEBUG" else "WARNING"
    return run_demo(args.nodes, args.base_port, args.data_dir, node_level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meshnode`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.handler(args)
    except EXPECTED_ERRORS as exc:
        print(f"meshnode: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
