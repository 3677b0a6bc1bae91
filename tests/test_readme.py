"""The README stays true: every command it shows runs, offline, as written.

- every ``meshnode ...`` line in its shell blocks (and the systemd unit's ``ExecStart``) names a
  real command, and every ``--flag`` on that line is one the command's ``--help`` lists;
- every script it names exists;
- every setting ``meshnode init`` writes is in the Configuration table, under its section;
- the JSON API ``curl`` examples run, in order, against a real ``meshnode run`` process.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from meshnode.cli import build_parser
from meshnode.config import Config, to_toml_dict
from tests.nodeproc import NodeProcess, cli, free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# The guides the README links (docs/*.md) are held to the same standard as the README itself.
GUIDES = [(ROOT / "docs" / name).read_text(encoding="utf-8")
          for name in re.findall(r"\]\(docs/([a-z-]+\.md)\)", README)]
DOCS = "\n".join([README, *GUIDES])
FLAG = re.compile(r"--[a-z][a-z0-9-]*")


def shell_blocks(text: str) -> list[str]:
    """The bodies of the README's ```sh blocks."""
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def logical_lines(block: str) -> list[str]:
    """A block's lines with backslash continuations joined."""
    return block.replace("\\\n", " ").splitlines()


def meshnode_invocations(line: str) -> list[list[str]]:
    """The words after each ``meshnode`` executable on a line (comments dropped)."""
    line = line.split(" # ")[0].split("   #")[0]
    invocations = []
    for part in re.split(r"&&|;", line):
        words = part.split()
        for index, word in enumerate(words):
            after_user_flag = index > 0 and words[index - 1] == "-u"  # sudo -u meshnode
            if (word == "meshnode" and not after_user_flag) or word.endswith("/bin/meshnode"):
                invocations.append(words[index + 1:])
                break
    return invocations


def command_paths(words: list[str]) -> list[list[str]]:
    """Subcommand paths named by the words (``member list|disable`` gives two paths)."""
    path: list[str] = []
    for word in words:
        if not re.fullmatch(r"[a-z|]+", word):
            break
        path.append(word)
    paths: list[list[str]] = [[]]
    for word in path:
        paths = [[*p, alternative] for p in paths for alternative in word.split("|")]
    return paths


def readme_commands() -> list[tuple[str, list[str]]]:
    """(line, words) for every meshnode invocation the README and the systemd unit show."""
    found = []
    for block in shell_blocks(DOCS):
        for line in logical_lines(block):
            found += [(line.strip(), words) for words in meshnode_invocations(line)]
    unit = (ROOT / "scripts" / "meshnode.service").read_text(encoding="utf-8")
    for line in unit.splitlines():
        if line.startswith("ExecStart="):
            found += [(line, words) for words in meshnode_invocations(line)]
    return found


def help_text(path: list[str]) -> str:
    """``meshnode PATH --help``, from the real parser in this process (a subprocess per command
    took minutes on a loaded machine); a word that names no subcommand where one is expected
    fails, as ``--help`` would with "invalid choice"."""
    parser = build_parser()
    for word in path:
        commands = next((action.choices for action in parser._actions
                         if isinstance(action, argparse._SubParsersAction)), None)
        if commands is None:
            break  # the rest are the command's own arguments
        assert word in commands, f"meshnode {' '.join(path)}: no command {word!r}"
        parser = commands[word]
    return parser.format_help()


def test_readme__shows_meshnode_commands_at_all() -> None:
    # Guards the parser below: if it found nothing, the other test would check nothing.
    commands = {" ".join(p) for _, words in readme_commands() for p in command_paths(words)}
    assert {"init", "run", "member add", "token create", "backup", "demo"} <= commands


def test_readme__every_command_and_flag_it_shows_exists() -> None:
    problems = []
    helps: dict[str, str] = {}
    for line, words in readme_commands():
        flags = set(FLAG.findall(" ".join(words)))
        for path in command_paths(words):
            key = " ".join(path)
            if key not in helps:
                helps[key] = help_text(path)
            problems += [f"{line!r}: 'meshnode {key}' has no {flag}"
                         for flag in sorted(flags) if flag not in helps[key]]
    assert not problems, "\n".join(problems)


def test_readme__every_script_it_names_exists() -> None:
    named = set(re.findall(r"scripts/[A-Za-z0-9_.]+[A-Za-z0-9]", DOCS))
    assert "scripts/start.sh" in named
    assert "scripts/test.sh" in named
    missing = sorted(name for name in named if not (ROOT / name).exists())
    assert not missing, missing
    for script in ("start.sh", "test.sh"):
        assert os.access(ROOT / "scripts" / script, os.X_OK), f"scripts/{script} not executable"


def test_readme__configuration_table_lists_every_setting_init_writes(tmp_path: Path) -> None:
    table = dict(re.findall(r"^\| `\[([a-z]+)\]` \|(.*)\|$", README, flags=re.MULTILINE))
    written = to_toml_dict(Config(data_dir=tmp_path, name="x", handle="x",
                                  public_url="http://127.0.0.1:1"))
    missing = [f"[{section}] {key}" for section, keys in written.items()
               for key in keys if f"`{key}`" not in table.get(section, "")]
    assert not missing, f"settings missing from the README's Configuration table: {missing}"


def test_readme__systemd_unit_runs_the_node_the_pi_section_creates() -> None:
    pi_section = README.split("## Running on a Raspberry Pi")[1].split("\n## ")[0]
    created = re.findall(r"meshnode init --data-dir (\S+)", pi_section)
    unit = (ROOT / "scripts" / "meshnode.service").read_text(encoding="utf-8")
    served = re.findall(r"^ExecStart=\S+ run --data-dir (\S+)$", unit, flags=re.MULTILINE)
    assert created
    assert created == served


def api_examples() -> list[str]:
    """The curl commands of the README and its guides, in order (a quoted JSON body may span
    lines)."""
    commands: list[str] = []
    pending = ""
    for block in shell_blocks(DOCS):
        for line in logical_lines(block):
            if not pending and not line.strip().startswith("curl "):
                continue
            pending = f"{pending}\n{line}" if pending else line.strip()
            try:
                shlex.split(pending)
            except ValueError:  # an open quote: the command goes on
                continue
            commands.append(pending)
            pending = ""
    return commands


@pytest.mark.slow
def test_readme__api_examples_run_against_a_real_node(tmp_path: Path) -> None:
    # Given a real node with a member and a token, and the image the example uploads
    data, port = tmp_path / "node", free_port()
    cli("init", "--data-dir", str(data), "--name", "Readme", "--handle", "readme",
        "--url", f"http://127.0.0.1:{port}", "--quiet")
    cli("member", "add", "--data-dir", str(data), "--username", "alice", "--password-stdin",
        stdin="correct horse battery staple\n")
    token = cli("token", "create", "--data-dir", str(data), "--username", "alice").stdout
    token = re.findall(r"mn_\S+", token)[0]
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(image, "JPEG")
    (tmp_path / "drill.jpg").write_bytes(image.getvalue())
    examples = api_examples()
    assert len(examples) >= 5
    next_week = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%d")
    node = NodeProcess(data, port).start()
    try:
        listing_id = ""
        for example in examples:
            # When each example runs as written (our port, token, listing id and a future date)
            command = (example.replace("http://127.0.0.1:8080", node.url)
                       .replace("/ID", f"/{listing_id}"))
            command = re.sub(r"\d{4}-\d{2}-\d{2}T", f"{next_week}T", command)
            argv = [*shlex.split(command), "-w", "\n%{http_code}"]
            argv = [a.replace("$T", token) for a in argv]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                    cwd=tmp_path, check=False)
            body, _, status = result.stdout.rpartition("\n")
            # Then it succeeds
            assert status.startswith("2"), f"{example}\n-> {status} {body}"
            if "-d '{" in example and "PATCH" not in example:
                listing_id = json.loads(body)["id"].rsplit("/", 1)[-1]
    finally:
        node.stop()
