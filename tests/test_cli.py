"""The ``meshnode`` command line, run as real subprocesses against real data directories."""

from __future__ import annotations

import gc
import json
import signal
import sqlite3
import stat
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from meshnode.cli import build_parser, main
from meshnode.serve import GC_THRESHOLDS, settle_heap
from tests.conftest import ride_listing
from tests.nodeproc import NodeProcess, cli, free_port

PASSWORD = "une longue phrase secrète\n"


def init(data_dir: Path, port: int = 8080) -> None:
    cli(
        "init",
        "--data-dir",
        str(data_dir),
        "--name",
        "Les Voisins du Canal",
        "--handle",
        "voisins",
        "--url",
        f"http://127.0.0.1:{port}",
    )


def add_member_with_token(data_dir: Path, username: str = "alice") -> str:
    cli(
        "member",
        "add",
        "--data-dir",
        str(data_dir),
        "--username",
        username,
        "--admin",
        "--password-stdin",
        stdin=PASSWORD,
    )
    return cli(
        "token", "create", "--data-dir", str(data_dir), "--username", username
    ).stdout.strip()


def api(url: str, token: str, method: str = "GET", body: object = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def commands(parser=None, prefix=()):  # type: ignore[no-untyped-def]
    """Every command path of the CLI, e.g. ('member', 'add')."""
    parser = parser or build_parser()
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from commands(sub, (*prefix, name))


@pytest.mark.parametrize("command", [(), *commands()], ids=lambda c: " ".join(c) or "meshnode")
def test_cli__every_command_has_help(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main([*command, "--help"])
    assert excinfo.value.code == 0
    assert "usage: meshnode" in capsys.readouterr().out


def test_init__creates_config_database_and_private_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    init(data_dir)
    assert (data_dir / "config.toml").read_text().count("Les Voisins du Canal") == 1
    assert stat.S_IMODE((data_dir / "meshnode.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_init__refuses_to_overwrite_an_existing_node(tmp_path: Path) -> None:
    init(tmp_path / "node")
    before = (tmp_path / "node" / "keys" / "node-ed25519.key").read_bytes()
    result = cli(
        "init",
        "--data-dir",
        str(tmp_path / "node"),
        "--name",
        "Autre",
        "--handle",
        "autre",
        "--url",
        "http://127.0.0.1:9000",
        check=False,
    )
    assert result.returncode == 1
    assert "refusing to overwrite" in result.stderr
    assert (tmp_path / "node" / "keys" / "node-ed25519.key").read_bytes() == before


@pytest.mark.parametrize(
    ("handle", "url", "message"),
    [
        ("voisins", "127.0.0.1:8080", "invalid public URL"),
        ("Les Voisins", "http://127.0.0.1:8080", "invalid handle"),
    ],
)
def test_init__bad_url_or_handle_is_a_clear_error(
    tmp_path: Path, handle: str, url: str, message: str
) -> None:
    result = cli(
        "init",
        "--data-dir",
        str(tmp_path / "n"),
        "--name",
        "N",
        "--handle",
        handle,
        "--url",
        url,
        check=False,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "n").exists()


def test_member_and_token_commands(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    init(data_dir)
    token = add_member_with_token(data_dir)
    assert token.startswith("mn_")
    duplicate = cli(
        "member",
        "add",
        "--data-dir",
        str(data_dir),
        "--username",
        "alice",
        "--password-stdin",
        stdin=PASSWORD,
        check=False,
    )
    assert duplicate.returncode == 1
    assert "already taken" in duplicate.stderr
    short = cli(
        "member",
        "add",
        "--data-dir",
        str(data_dir),
        "--username",
        "bob",
        "--password-stdin",
        stdin="short\n",
        check=False,
    )
    assert short.returncode == 1
    listing = cli("member", "list", "--data-dir", str(data_dir)).stdout
    assert "alice" in listing
    assert "bob" not in listing
    cli("member", "disable", "--data-dir", str(data_dir), "--username", "alice")
    assert "disabled" in cli("member", "list", "--data-dir", str(data_dir)).stdout
    revoked = cli("token", "revoke", "--data-dir", str(data_dir), "--username", "alice").stdout
    assert "revoked 1" in revoked
    conn = sqlite3.connect(data_dir / "meshnode.sqlite3")
    stored = conn.execute("SELECT token_hash FROM api_tokens").fetchone()[0]
    conn.close()
    assert token.encode() not in stored  # only the hash is stored


def test_run__serves_then_stops_cleanly_on_sigterm_and_sigint(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "node"
    init(data_dir, port)
    token = add_member_with_token(data_dir)
    for sig in (signal.SIGTERM, signal.SIGINT):
        node = NodeProcess(data_dir, port).start()
        print(f"startup took {node.startup_seconds:.2f} s")
        status, _ = api(f"{node.url}/api/v1/listings", token, "POST", ride_listing())
        assert status == 201
        code, stderr = node.stop(sig)
        assert code == 0, stderr
        assert "Traceback" not in stderr
        assert "stopped cleanly" in stderr


def test_run__second_process_on_same_data_dir_is_refused(tmp_path: Path) -> None:
    port = free_port()
    init(tmp_path / "node", port)
    node = NodeProcess(tmp_path / "node", port).start()
    try:
        second = cli(
            "run", "--data-dir", str(tmp_path / "node"), "--port", str(free_port()), check=False
        )
        assert second.returncode == 1
        assert "already running" in second.stderr
    finally:
        node.stop()


def test_run__sigkill_loses_no_acknowledged_listing(tmp_path: Path) -> None:
    """Given a node taking writes, when it is killed with SIGKILL mid-burst, then every
    listing it answered 201 for is there after restart, with its signed versions."""
    port = free_port()
    data_dir = tmp_path / "node"
    init(data_dir, port)
    token = add_member_with_token(data_dir)
    node = NodeProcess(data_dir, port).start()
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        number = 0
        while not stop.is_set():
            try:
                status, body = api(
                    f"{node.url}/api/v1/listings",
                    token,
                    "POST",
                    ride_listing(title=f"Trajet numéro {number}"),
                )
            except OSError:
                return
            if status == 201:
                acknowledged.append(body["id"])
            number += 1

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 40:
        threading.Event().wait(0.02)
    node.kill()
    stop.set()
    for thread in threads:
        thread.join()
    restarted = NodeProcess(data_dir, port).start()
    try:
        for listing_id in acknowledged:
            status, body = api(f"{restarted.url}/api/v1/listings/{listing_id}", token)
            assert status == 200, listing_id
            assert body["signed_object"]["proof"]["proofValue"].startswith("z")
    finally:
        restarted.stop()
    conn = sqlite3.connect(data_dir / "meshnode.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_backup_while_running_then_restore(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "node"
    init(data_dir, port)
    token = add_member_with_token(data_dir)
    node = NodeProcess(data_dir, port).start()
    try:
        for number in range(5):
            api(
                f"{node.url}/api/v1/listings",
                token,
                "POST",
                ride_listing(title=f"Avant la sauvegarde {number}"),
            )
        backup = tmp_path / "backup.sqlite3"
        result = cli("backup", "--data-dir", str(data_dir), "--to", str(backup))
        assert "backup written" in result.stdout
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        api(f"{node.url}/api/v1/listings", token, "POST", ride_listing(title="Après"))
        refused = cli("restore", "--data-dir", str(data_dir), "--from", str(backup), check=False)
        assert refused.returncode == 1
        assert "already running" in refused.stderr
    finally:
        node.stop()
    cli("restore", "--data-dir", str(data_dir), "--from", str(backup))
    node = NodeProcess(data_dir, port).start()
    try:
        status, body = api(f"{node.url}/api/v1/listings?limit=100", token)
        assert status == 200
        titles = {item["title"] for item in body["items"]}
        assert titles == {f"Avant la sauvegarde {n}" for n in range(5)}
    finally:
        node.stop()


def test_restore__rejects_a_file_that_is_not_a_backup(tmp_path: Path) -> None:
    init(tmp_path / "node")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"definitely not sqlite" * 100)
    result = cli("restore", "--data-dir", str(tmp_path / "node"), "--from", str(junk), check=False)
    assert result.returncode == 1
    assert "not a meshnode database" in result.stderr


def test_settle_heap__freezes_what_start_up_left_alive() -> None:
    """Given objects alive after start-up, when the server settles its heap, then they sit
    in the permanent generation (a full collection no longer walks them: issue 17's tail)
    and what is created afterwards is still collected."""
    kept = [{"route": n} for n in range(1000)]
    thresholds = gc.get_threshold()
    try:
        frozen = settle_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert frozen >= len(kept)
        assert gc.get_freeze_count() == frozen
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # new garbage is still found
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
