"""Key material: generation, private-key files (mode 0600) and the key vault.

The node's own keys live in ``DATA_DIR/keys/`` as files readable only by the node's user.
Member keys live in the database, sealed (XSalsa20-Poly1305, PyNaCl ``SecretBox``) under
``keys/vault.key``, so a database copy alone never exposes a private key.
Private keys are never logged: ``Identity`` hides them from ``repr``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import nacl.secret
import nacl.signing
import nacl.utils

from meshnode.protocol.multikey import ed25519_public_pem, ed25519_public_to_multikey

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

# `cryptography` (≈9 MB resident) is imported only where RSA is used: generating keys and
# speaking cavage signatures to non-meshnode servers. Ed25519 is PyNaCl throughout.

NODE_ED25519_FILE = "node-ed25519.key"
NODE_RSA_FILE = "node-rsa.pem"
NODE_RSA_PUBLIC_FILE = "node-rsa.pub.pem"
VAULT_KEY_FILE = "vault.key"
RSA_BITS = 2048


class KeyStoreError(Exception):
    """Key files are missing, unreadable or have unsafe permissions."""


@dataclass(frozen=True)
class Identity:
    """One actor's key pairs: Ed25519 for object proofs, RSA-2048 for HTTP signatures."""

    ed25519_seed: bytes = field(repr=False)
    rsa_private_pem: bytes = field(repr=False)
    # The public half when already known (a file or a database column), so serving an
    # actor document never needs to load the RSA private key.
    known_rsa_public_pem: str | None = field(default=None, repr=False, compare=False)

    @cached_property
    def signing_key(self) -> nacl.signing.SigningKey:
        """The PyNaCl Ed25519 signing key."""
        return nacl.signing.SigningKey(self.ed25519_seed)

    @property
    def ed25519_public(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return bytes(self.signing_key.verify_key)

    @property
    def multikey(self) -> str:
        """FEP-521a ``publicKeyMultibase`` form of the Ed25519 key (``z6Mk…``)."""
        return ed25519_public_to_multikey(self.ed25519_public)

    @property
    def ed25519_public_pem(self) -> str:
        """The Ed25519 public key as SubjectPublicKeyInfo PEM."""
        return ed25519_public_pem(self.ed25519_public)

    @cached_property
    def rsa_private_key(self) -> rsa.RSAPrivateKey:
        """The RSA private key object (for cavage / rsa-v1_5-sha256 HTTP signatures)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        # Our own key (a 0600 file we wrote, or a member's key we sealed): its validation
        # costs ~44 ms a load and proves nothing new (cryptography: "Loading private keys").
        key = serialization.load_pem_private_key(self.rsa_private_pem, password=None,
                                                 unsafe_skip_rsa_key_validation=True)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyStoreError("RSA key file does not hold an RSA key")
        return key

    @cached_property
    def rsa_public_pem(self) -> str:
        """The RSA public key as PEM, as published in the actor's ``publicKey``."""
        if self.known_rsa_public_pem is not None:
            return self.known_rsa_public_pem
        from cryptography.hazmat.primitives import serialization

        return (
            self.rsa_private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


def generate_identity() -> Identity:
    """Create fresh Ed25519 and RSA-2048 key pairs."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Identity(ed25519_seed=nacl.utils.random(32), rsa_private_pem=pem)


def _write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 atomically; refuse to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _read_secret(path: Path) -> bytes:
    """Read a private key file, refusing one that others can read."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError as exc:
        raise KeyStoreError(f"missing key file {path}") from exc
    if mode & 0o077:
        raise KeyStoreError(
            f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}"
        )
    return path.read_bytes()


def create_key_files(keys_dir: Path) -> Identity:
    """Generate the node's identity and vault key into a new ``keys_dir`` (mode 0700)."""
    keys_dir.mkdir(mode=0o700, parents=False, exist_ok=False)
    identity = generate_identity()
    _write_secret(keys_dir / NODE_ED25519_FILE, identity.ed25519_seed)
    _write_secret(keys_dir / NODE_RSA_FILE, identity.rsa_private_pem)
    _write_public(keys_dir / NODE_RSA_PUBLIC_FILE, identity.rsa_public_pem)
    _write_secret(keys_dir / VAULT_KEY_FILE, nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE))
    return identity


def load_node_identity(keys_dir: Path) -> Identity:
    """Read the node's own key pairs from ``keys_dir``."""
    seed = _read_secret(keys_dir / NODE_ED25519_FILE)
    if len(seed) != 32:
        raise KeyStoreError(f"{keys_dir / NODE_ED25519_FILE} is not a 32-byte Ed25519 seed")
    private_pem = _read_secret(keys_dir / NODE_RSA_FILE)
    public_path = keys_dir / NODE_RSA_PUBLIC_FILE
    if not public_path.exists():  # a data dir made before the public file existed
        derived = Identity(ed25519_seed=seed, rsa_private_pem=private_pem).rsa_public_pem
        _write_public(public_path, derived)
    return Identity(ed25519_seed=seed, rsa_private_pem=private_pem,
                    known_rsa_public_pem=public_path.read_text("ascii"))


def _write_public(path: Path, pem: str) -> None:
    """Write a public key file atomically (0600 too: everything in keys/ is the node's own)."""
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    _write_secret(temporary, pem.encode("ascii"))
    temporary.replace(path)


class KeyVault:
    """Seals and opens member private keys stored in the database."""

    def __init__(self, key: bytes) -> None:
        self._box = nacl.secret.SecretBox(key)

    @classmethod
    def from_dir(cls, keys_dir: Path) -> KeyVault:
        """Load the vault key from ``keys_dir``."""
        return cls(_read_secret(keys_dir / VAULT_KEY_FILE))

    def __repr__(self) -> str:
        return "KeyVault(<sealed>)"

    def seal(self, secret: bytes) -> bytes:
        """Encrypt and authenticate ``secret`` with a random nonce."""
        return bytes(self._box.encrypt(secret))

    def open(self, sealed: bytes) -> bytes:
        """Decrypt a value produced by ``seal``; raises if it was tampered with."""
        return bytes(self._box.decrypt(sealed))

    def seal_identity(self, identity: Identity) -> tuple[bytes, bytes]:
        """Seal both private keys of a member identity for storage."""
        return self.seal(identity.ed25519_seed), self.seal(identity.rsa_private_pem)

    def open_identity(
        self, sealed_seed: bytes, sealed_rsa: bytes, rsa_public_pem: str | None = None
    ) -> Identity:
        """Rebuild a member identity from its sealed database columns."""
        return Identity(
            ed25519_seed=self.open(sealed_seed),
            rsa_private_pem=self.open(sealed_rsa),
            known_rsa_public_pem=rsa_public_pem,
        )
