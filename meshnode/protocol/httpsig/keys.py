"""Loading keys and the raw sign/verify operations (PyNaCl for Ed25519; ``cryptography``
for RSA, imported on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nacl.exceptions
import nacl.signing

from meshnode.protocol.errors import KeyFormatError, SignatureError, ValidationError
from meshnode.protocol.httpsig.common import (
    ED25519,
    RSA_PSS_SHA512,
    RSA_V1_5_SHA256,
    SigningKey,
    VerifyingKey,
)
from meshnode.protocol.multikey import (
    ed25519_private_from_pem,
    ed25519_public_from_der,
    pem_der_body,
)

# --------------------------------------------------------------------------- keys

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey


def load_public_pem(pem: str) -> VerifyingKey:
    """Load an Ed25519 (as a PyNaCl key) or RSA public key from SubjectPublicKeyInfo PEM."""
    raw = ed25519_public_from_der(pem_der_body(pem, "PUBLIC KEY"))
    if raw is not None:
        return nacl.signing.VerifyKey(raw)
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unreadable public key PEM: {exc}") from exc
    if not isinstance(key, RSAPublicKey):
        raise KeyFormatError(f"unsupported public key type {type(key).__name__}")
    return key


def load_private_pem(pem: bytes) -> SigningKey:
    """Load an unencrypted Ed25519 (as a PyNaCl key) or RSA private key from PEM."""
    seed = ed25519_private_from_pem(pem)
    if seed is not None:
        return nacl.signing.SigningKey(seed)
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unreadable private key PEM: {exc}") from exc
    if not isinstance(key, RSAPrivateKey):
        raise KeyFormatError(f"unsupported private key type {type(key).__name__}")
    return key


def _sign_bytes(key: SigningKey, algorithm: str, data: bytes) -> bytes:
    if isinstance(key, nacl.signing.SigningKey):
        if algorithm != ED25519:
            raise ValidationError(f"an Ed25519 key cannot sign {algorithm!r}")
        return key.sign(data).signature
    return _sign_with_cryptography(key, algorithm, data)


def _sign_with_cryptography(
    key: Ed25519PrivateKey | RSAPrivateKey, algorithm: str, data: bytes
) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(key, Ed25519PrivateKey):
        if algorithm != ED25519:
            raise ValidationError(f"an Ed25519 key cannot sign {algorithm!r}")
        return key.sign(data)
    if algorithm == RSA_V1_5_SHA256:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if algorithm == RSA_PSS_SHA512:
        return key.sign(data, padding.PSS(padding.MGF1(hashes.SHA512()), 64), hashes.SHA512())
    raise ValidationError(f"an RSA key cannot sign {algorithm!r}")


def _verify_bytes(key: VerifyingKey, algorithm: str, signature: bytes, data: bytes) -> bool:
    """Return whether ``signature`` is valid; wrong key type for ``algorithm`` raises."""
    if isinstance(key, nacl.signing.VerifyKey):
        if algorithm != ED25519:
            raise SignatureError(f"algorithm {algorithm!r} does not match an Ed25519 key")
        try:
            key.verify(data, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError):
            return False
        return True
    return _verify_with_cryptography(key, algorithm, signature, data)


def _verify_with_cryptography(
    key: Ed25519PublicKey | RSAPublicKey, algorithm: str, signature: bytes, data: bytes
) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        if isinstance(key, Ed25519PublicKey):
            if algorithm != ED25519:
                raise SignatureError(f"algorithm {algorithm!r} does not match an Ed25519 key")
            key.verify(signature, data)
        elif algorithm == RSA_V1_5_SHA256:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == RSA_PSS_SHA512:
            pss = padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.AUTO)
            key.verify(signature, data, pss, hashes.SHA512())
        else:
            raise SignatureError(f"algorithm {algorithm!r} does not match an RSA key")
    except InvalidSignature:
        return False
    return True


def _is_ed25519(key: SigningKey | VerifyingKey) -> bool:
    if isinstance(key, nacl.signing.SigningKey | nacl.signing.VerifyKey):
        return True
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    return isinstance(key, Ed25519PrivateKey | Ed25519PublicKey)


def _default_algorithm(key: SigningKey | VerifyingKey) -> str:
    return ED25519 if _is_ed25519(key) else RSA_V1_5_SHA256
