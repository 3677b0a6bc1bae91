"""``meshnode ledger verify``: intact journals pass, tampered SQLite rows are reported."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from meshnode.cli import main
from meshnode.config import Config
from meshnode.services import ledger, members
from meshnode.services.context import NodeContext
from tests.conftest import make_config


async def _populate(config: Config, payments: int) -> None:
    ctx = await NodeContext.open(config)
    try:
        alice = await members.add_member(ctx, username="alice", password=None, is_admin=True)
        bob = await members.add_member(ctx, username="bob", password=None)
        for index in range(payments):
            payer, payee = (alice, "bob") if index % 2 == 0 else (bob, "alice")
            await ledger.pay(ctx, payer, payee=payee, amount=f"{index + 1}.25")
    finally:
        await ctx.close()


@pytest.fixture
def populated(tmp_path: Path) -> Config:
    config = make_config(tmp_path / "node")
    asyncio.run(_populate(config, 6))
    return config


def _tamper(config: Config, *statements: str) -> None:
    conn = sqlite3.connect(config.database_path, isolation_level=None)
    try:
        # The journal's triggers refuse UPDATE/DELETE: an attacker with the file drops them.
        conn.execute("DROP TRIGGER ledger_journal_no_update")
        conn.execute("DROP TRIGGER ledger_journal_no_delete")
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def _verify(config: Config, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["ledger", "verify", "--data-dir", str(config.data_dir)])
    return code, capsys.readouterr().out


def test_ledger_verify__intact_journal_exits_0(
    populated: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(populated, capsys)
    assert code == 0
    assert "journal intact: 6 entries" in out


def test_ledger_verify__edited_amount_is_reported(
    populated: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(populated, "UPDATE ledger_journal SET amount = 1 WHERE seq = 3")
    code, out = _verify(populated, capsys)
    assert code == 2
    assert "entry 3: altered" in out
    assert "balance of" in out


def test_ledger_verify__deleted_row_is_reported(
    populated: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(populated, "DELETE FROM ledger_journal WHERE seq = 4")
    code, out = _verify(populated, capsys)
    assert code == 2
    assert "entry 5: removed: entries 4..4 are missing" in out


def test_ledger_verify__swapped_rows_are_reported(
    populated: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(
        populated,
        "UPDATE ledger_journal SET seq = 100 WHERE seq = 2",
        "UPDATE ledger_journal SET seq = 2 WHERE seq = 3",
        "UPDATE ledger_journal SET seq = 3 WHERE seq = 100",
    )
    code, out = _verify(populated, capsys)
    assert code == 2
    assert "reordered" in out


def test_ledger_verify__edited_signed_document_is_reported(
    populated: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(populated, "UPDATE ledger_journal SET document = replace(document, '\"note\":\"\"',"
                       " '\"note\":\"forged\"') WHERE seq = 1")
    code, out = _verify(populated, capsys)
    assert code == 2
    assert "entry 1: altered" in out


def test_ledger_summary__prints_totals(
    populated: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ledger", "summary", "--data-dir", str(populated.data_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert "transactions: 6" in out
    assert "sum of balances: 0.00" in out
