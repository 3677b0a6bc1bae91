"""Ed25519 key encodings: base58btc, Multikey (FEP-521a), multibase secrets, PEM.

* Multikey: https://www.w3.org/TR/controller-document/#multikey and
  https://w3id.org/fep/521a — ``"z" + base58btc(0xed 0x01 || 32-byte key)``.
* Secret keys: multicodec ``ed25519-priv`` (varint 0x1300 = bytes 0x80 0x26)
  followed by the 32-byte seed, as in the vc-di-eddsa test vectors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from meshnode.protocol.errors import KeyFormatError

__all__ = [
    "B58_ALPHABET",
    "b58decode",
    "b58encode",
    "ed25519_private_from_pem",
    "ed25519_public_from_der",
    "ed25519_public_from_pem",
    "ed25519_public_pem",
    "ed25519_public_to_multikey",
    "ed25519_secret_from_multibase",
    "ed25519_secret_to_multibase",
    "fingerprint",
    "multikey_to_ed25519_public",
    "pem_der_body",
]

# Bitcoin base58 alphabet (multibase "z" = base58btc).
B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(B58_ALPHABET)}
# ASCII byte -> its base58 digit, 255 for every byte that is none (one C call per value).
_B58_DIGITS = bytes(_B58_INDEX.get(chr(byte), 255) for byte in range(256))

ED25519_PUB_PREFIX = b"\xed\x01"  # multicodec ed25519-pub
ED25519_PRIV_PREFIX = b"\x80\x26"  # multicodec ed25519-priv
ED25519_KEY_LEN = 32
# A base58 string longer than this cannot be a key; refusing early keeps the
# quadratic big-int conversion bounded on hostile input.
MAX_B58_LEN = 256


def b58encode(data: bytes) -> str:
    """Encode bytes as base58btc; each leading zero byte becomes a ``1``."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(B58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode base58btc text; raises :class:`KeyFormatError` on foreign characters."""
    if len(text) > MAX_B58_LEN:
        raise KeyFormatError(f"base58 value longer than {MAX_B58_LEN} characters")
    digits = text.encode("ascii", "replace").translate(_B58_DIGITS)  # non-ASCII: "?", 255
    if 255 in digits:
        foreign = next(char for char in text if char not in _B58_INDEX)
        raise KeyFormatError(f"invalid base58 character {foreign!r}")
    number = 0
    for digit in digits:  # a proof's 88 digits: this loop is most of a decode
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def _multibase_b58_decode(value: str) -> bytes:
    # Multibase: the first character names the base; "z" is base58btc.
    if not value.startswith("z"):
        raise KeyFormatError("multibase value must use base58btc (prefix 'z')")
    return b58decode(value[1:])


def _strip_codec(raw: bytes, prefix: bytes, what: str) -> bytes:
    if not raw.startswith(prefix):
        raise KeyFormatError(f"not an {what} (multicodec prefix 0x{prefix.hex()} expected)")
    key = raw[len(prefix) :]
    if len(key) != ED25519_KEY_LEN:
        raise KeyFormatError(f"{what} must be {ED25519_KEY_LEN} bytes, got {len(key)}")
    return key


def _check_raw_key(raw: bytes) -> None:
    if len(raw) != ED25519_KEY_LEN:
        raise KeyFormatError(f"Ed25519 key must be {ED25519_KEY_LEN} bytes, got {len(raw)}")


def ed25519_public_to_multikey(raw: bytes) -> str:
    """Return the Multikey ``publicKeyMultibase`` (``z6Mk…``) of a raw 32-byte key."""
    _check_raw_key(raw)
    return "z" + b58encode(ED25519_PUB_PREFIX + raw)


def multikey_to_ed25519_public(value: str) -> bytes:
    """Decode a Multikey ``publicKeyMultibase`` into the raw 32-byte Ed25519 key."""
    return _strip_codec(_multibase_b58_decode(value), ED25519_PUB_PREFIX, "Ed25519 public key")


def ed25519_secret_to_multibase(seed: bytes) -> str:
    """Encode a 32-byte Ed25519 seed as a multibase ``secretKeyMultibase``."""
    _check_raw_key(seed)
    return "z" + b58encode(ED25519_PRIV_PREFIX + seed)


def ed25519_secret_from_multibase(value: str) -> bytes:
    """Decode a ``secretKeyMultibase`` (prefix 0x80 0x26) into the 32-byte seed."""
    return _strip_codec(_multibase_b58_decode(value), ED25519_PRIV_PREFIX, "Ed25519 secret key")


# RFC 8410 DER encodings of Ed25519 keys have fixed prefixes: SubjectPublicKeyInfo is
# SEQ{SEQ{OID 1.3.101.112}, BIT STRING(32 bytes)}, PKCS#8 is
# SEQ{INT 0, SEQ{OID 1.3.101.112}, OCTET STRING{OCTET STRING(32-byte seed)}}.
# Writing them by hand keeps the `cryptography` package (≈9 MB resident) off every
# Ed25519 path; it is imported only where RSA is needed.
# https://www.rfc-editor.org/rfc/rfc8410#section-4 and #section-7
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


def pem_der_body(pem: str | bytes, label: str) -> bytes:
    """Return the DER inside a ``-----BEGIN <label>-----`` PEM block."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise KeyFormatError(f"unreadable key PEM: no {label} block")
    encoded = "".join(text[start + len(begin) : stop].split())
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError(f"unreadable key PEM: {exc}") from exc


def _to_pem(der: bytes, label: str) -> str:
    encoded = base64.b64encode(der).decode("ascii")
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def ed25519_public_pem(raw: bytes) -> str:
    """Return the SubjectPublicKeyInfo PEM of a raw 32-byte Ed25519 public key."""
    _check_raw_key(raw)
    return _to_pem(ED25519_SPKI_PREFIX + raw, "PUBLIC KEY")


def ed25519_public_from_der(der: bytes) -> bytes | None:
    """Return the raw key of an Ed25519 SubjectPublicKeyInfo, or None for another key type."""
    if len(der) == len(ED25519_SPKI_PREFIX) + 32 and der.startswith(ED25519_SPKI_PREFIX):
        return der[len(ED25519_SPKI_PREFIX) :]
    return None


def ed25519_public_from_pem(pem: str) -> bytes:
    """Return the raw 32 bytes of an Ed25519 public key given as PEM."""
    raw = ed25519_public_from_der(pem_der_body(pem, "PUBLIC KEY"))
    if raw is None:
        raise KeyFormatError("PEM holds a public key that is not Ed25519")
    return raw


def ed25519_private_from_pem(pem: bytes) -> bytes | None:
    """Return the 32-byte seed of an unencrypted PKCS#8 Ed25519 PEM, or None for another type."""
    if b"-----BEGIN PRIVATE KEY-----" not in pem:
        return None
    der = pem_der_body(pem, "PRIVATE KEY")
    if len(der) == len(ED25519_PKCS8_PREFIX) + 32 and der.startswith(ED25519_PKCS8_PREFIX):
        return der[len(ED25519_PKCS8_PREFIX) :]
    return None


def fingerprint(raw_public: bytes) -> str:
    """Return a short fingerprint for people to compare keys out of band.

    Choice: the first 16 characters of the unpadded RFC 4648 base32 of
    SHA-256(raw key), shown in four groups of four (``ABCD-EFGH-IJKL-MNOP``).
    That is 80 bits: short enough to read aloud, long enough that forging a
    key with the same fingerprint is out of reach. Base32 avoids
    case-sensitivity and the 0/O, 1/l confusion of base64.
    """
    digest = base64.b32encode(hashlib.sha256(raw_public).digest()).decode("ascii")
    head = digest[:16]
    return "-".join(head[i : i + 4] for i in range(0, 16, 4))
