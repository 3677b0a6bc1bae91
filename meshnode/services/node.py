"""Node life cycle on disk: create a data directory, back it up, restore it, lock it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from meshnode.config import Config, ConfigError, validate, write_config
from meshnode.keys import create_key_files
from meshnode.store.backup import check_database_file, copy_live_database, overwrite_database
from meshnode.store.db import initialise_database

LOCK_FILE = "meshnode.lock"


class NodeBusyError(Exception):
    """Another ``meshnode run`` holds this data directory."""


def init_node(config: Config) -> Config:
    """Create a new node in ``config.data_dir``; refuse if one is already there."""
    config = validate(config)
    data_dir = config.data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ConfigError(
            f"{data_dir} is not empty; refusing to overwrite an existing node or other files"
        )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = replace(config, data_dir=data_dir.resolve())
    create_key_files(config.keys_dir)
    config.media_dir.mkdir(mode=0o750)
    write_config(config)
    initialise_database(config.database_path, config.synchronous)
    config.database_path.chmod(0o600)
    return config


@contextmanager
def exclusive_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's run lock (``flock``): one node process per directory."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise NodeBusyError(
                f"a meshnode process is already running with {data_dir}; stop it first"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def backup_database(config: Config, target: Path) -> int:
    """Consistent online copy of the database (SQLite backup API), even while the node runs.

    Returns the size in bytes. The copy holds password hashes and sealed keys: mode 0600.
    """
    if target.exists():
        raise ConfigError(f"{target} already exists; choose a new file name")
    partial = target.with_name(f".{target.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    copy_live_database(config.database_path, partial)
    check_database_file(partial)
    partial.replace(target)
    return target.stat().st_size


def restore_database(config: Config, source_file: Path) -> list[str]:
    """Replace the node's database by a backup (node stopped); return migrations applied."""
    if not source_file.is_file():
        raise ConfigError(f"{source_file} does not exist")
    check_database_file(source_file)
    with exclusive_lock(config.data_dir):
        overwrite_database(source_file, config.database_path)
        return initialise_database(config.database_path, config.synchronous)
