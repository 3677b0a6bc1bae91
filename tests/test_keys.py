"""Key files: permissions, refusal of unsafe files, sealing, no secrets in repr."""

from __future__ import annotations

import stat
from pathlib import Path

import nacl.exceptions
import pytest

from meshnode.keys import (
    NODE_ED25519_FILE,
    KeyStoreError,
    KeyVault,
    create_key_files,
    generate_identity,
    load_node_identity,
)


def test_create_key_files__private_files_are_0600_in_a_0700_dir(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    identity = create_key_files(keys)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for path in keys.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert load_node_identity(keys).ed25519_public == identity.ed25519_public


def test_load_node_identity__refuses_group_readable_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    create_key_files(keys)
    (keys / NODE_ED25519_FILE).chmod(0o640)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        load_node_identity(keys)


def test_create_key_files__refuses_existing_directory(tmp_path: Path) -> None:
    create_key_files(tmp_path / "keys")
    with pytest.raises(FileExistsError):
        create_key_files(tmp_path / "keys")


def test_identity__repr_hides_private_keys() -> None:
    identity = generate_identity()
    text = repr(identity)
    assert identity.ed25519_seed.hex() not in text
    assert "PRIVATE" not in text
    assert identity.multikey.startswith("z6Mk")
    assert "BEGIN PUBLIC KEY" in identity.rsa_public_pem


def test_key_vault__seal_round_trip_and_tamper_detection() -> None:
    vault = KeyVault(bytes(32))
    identity = generate_identity()
    sealed_seed, sealed_rsa = vault.seal_identity(identity)
    assert identity.ed25519_seed not in sealed_seed
    assert vault.open_identity(sealed_seed, sealed_rsa) == identity
    tampered = sealed_seed[:-1] + bytes([sealed_seed[-1] ^ 1])
    with pytest.raises(nacl.exceptions.CryptoError):
        vault.open(tampered)


def test_load_node_identity__public_rsa_file_written_and_matches(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    identity = create_key_files(keys)
    public_file = keys / "node-rsa.pub.pem"
    assert public_file.read_text() == identity.rsa_public_pem
    public_file.unlink()  # a data dir from before the file existed gets it back on load
    loaded = load_node_identity(keys)
    assert public_file.read_text() == identity.rsa_public_pem == loaded.rsa_public_pem
    assert public_file.stat().st_mode & 0o777 == 0o600


def test_node_identity__ed25519_paths_do_not_import_cryptography(tmp_path: Path) -> None:
    """Idle memory: `cryptography` (≈9 MB) loads only for RSA work, not at node start."""
    import subprocess
    import sys

    create_key_files(tmp_path / "keys")
    code = (
        "import sys; from pathlib import Path\n"
        "import meshnode.app, meshnode.cli\n"
        "from meshnode.keys import load_node_identity\n"
        f"i = load_node_identity(Path({str(tmp_path / 'keys')!r}))\n"
        "i.rsa_public_pem; i.multikey; i.ed25519_public_pem\n"
        "print(sorted(m for m in sys.modules if m.startswith('cryptography')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
