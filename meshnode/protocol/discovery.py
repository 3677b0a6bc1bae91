"""mDNS / DNS-SD adverts of meshnode nodes: TXT records, instance names, address choice.

Pure: works on bytes and strings; the zeroconf edge (``meshnode/federation/discovery.py``)
does the sockets. An advert is only a *hint* (mDNS has no authentication): the node it
names is trusted only after the challenge in :mod:`meshnode.protocol.challenge`.

TXT record (RFC 6763 §6): a sequence of length-prefixed ``key=value`` strings. We write
``txtvers`` first (§6.7), keep the whole record well under the 400 bytes §6.2 asks for,
and parse strictly: a record from the LAN is attacker-controlled input, so every size is
capped and any duplicate, unknown-format or missing key is a typed error.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meshnode.protocol.errors import KeyFormatError, ProtocolError
from meshnode.protocol.multikey import (
    ed25519_public_to_multikey,
    fingerprint,
    multikey_to_ed25519_public,
)

__all__ = [
    "MAX_TXT_BYTES",
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "TXT_VERSION",
    "Advert",
    "AdvertError",
    "DuplicateTxtKeyError",
    "TokenBucket",
    "TxtFormatError",
    "TxtTooLargeError",
    "UnsupportedAdvertError",
    "actor_url",
    "build_txt",
    "encode_txt",
    "instance_name",
    "parse_advert",
    "parse_txt",
    "select_addresses",
    "short_fingerprint",
]

SERVICE_TYPE = "_meshnode._tcp.local."
TXT_VERSION = "1"
PROTOCOL_VERSION = 1
# RFC 6763 §6.2: "the total size of a typical DNS-SD TXT record is intended to be small
# -- 200 bytes or less"; above 400 bytes it no longer fits a typical packet. We build
# records of about 250 bytes at most and refuse to parse anything over 400.
MAX_TXT_BYTES = 400
MAX_NAME_BYTES = 100  # community name in the TXT record, truncated on a character boundary
MAX_PATH_LEN = 100
MAX_KEY_LEN = 9  # §6.4: keys SHOULD be no more than nine characters
MAX_INSTANCE_BYTES = 63  # one DNS label
SHORT_FINGERPRINT_LEN = 9  # "ABCD-EFGH": 40 bits, enough to tell two "Les Voisins" apart

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
PATH_RE = re.compile(r"^(/[A-Za-z0-9_.~-]+)+$")
REQUIRED_KEYS = ("txtvers", "pv", "pk", "path", "name")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class AdvertError(ProtocolError):
    """An advert (TXT record, instance name or address set) cannot be used."""

    code = "bad_advert"


class TxtFormatError(AdvertError):
    """The TXT record is not well-formed RFC 6763 data or misses a required key."""

    code = "bad_txt"


class TxtTooLargeError(AdvertError):
    """The TXT record exceeds :data:`MAX_TXT_BYTES` (or one field exceeds its cap)."""

    code = "txt_too_large"


class DuplicateTxtKeyError(TxtFormatError):
    """A key appears twice; RFC 6763 §6.4 says to ignore the second, we refuse the record."""

    code = "duplicate_txt_key"


class UnsupportedAdvertError(AdvertError):
    """The advert is well-formed but speaks a txtvers or protocol version we do not."""

    code = "unsupported_advert"


@dataclass(frozen=True)
class Advert:
    """What a node claims about itself over mDNS (unverified until the challenge passes)."""

    public_key: bytes
    actor_path: str
    community_name: str
    protocol_version: int = PROTOCOL_VERSION

    @property
    def multikey(self) -> str:
        """The advertised key in FEP-521a Multikey form (``z6Mk…``)."""
        return ed25519_public_to_multikey(self.public_key)

    @property
    def fingerprint(self) -> str:
        """The full key fingerprint shown to admins (``ABCD-EFGH-IJKL-MNOP``)."""
        return fingerprint(self.public_key)


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore").rstrip()


def short_fingerprint(public_key: bytes) -> str:
    """The first two groups of the key fingerprint, carried in the instance name."""
    return fingerprint(public_key)[:SHORT_FINGERPRINT_LEN]


def instance_name(community_name: str, public_key: bytes) -> str:
    """The DNS-SD instance label: ``"Les Voisins du Canal (ABCD-EFGH)"``, at most 63 bytes.

    The key fingerprint keeps two communities with the same name from clashing (RFC 6762
    §9 would otherwise rename one to "… (2)" at random). Dots are replaced because some
    resolvers mishandle escaped dots in instance labels.
    """
    suffix = f" ({short_fingerprint(public_key)})"
    clean = _CONTROL_RE.sub("", community_name).replace(".", " ").strip() or "meshnode"
    head = truncate_utf8(clean, MAX_INSTANCE_BYTES - len(suffix.encode("ascii")))
    return head + suffix


def encode_txt(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Encode ``(key, value)`` pairs, in order, as RFC 6763 TXT RDATA."""
    out = bytearray()
    for key, value in pairs:
        item = f"{key}={value}".encode()
        if len(item) > 255:
            raise TxtTooLargeError(f"TXT entry {key!r} exceeds 255 bytes")
        out.append(len(item))
        out += item
    if len(out) > MAX_TXT_BYTES:
        raise TxtTooLargeError(f"TXT record of {len(out)} bytes exceeds {MAX_TXT_BYTES}")
    return bytes(out)


def build_txt(advert: Advert) -> bytes:
    """The node's TXT record: ``txtvers`` first, then version, key, actor path, name."""
    _check_path(advert.actor_path)
    name = truncate_utf8(_CONTROL_RE.sub("", advert.community_name), MAX_NAME_BYTES)
    return encode_txt(
        [
            ("txtvers", TXT_VERSION),
            ("pv", str(advert.protocol_version)),
            ("pk", advert.multikey),
            ("path", advert.actor_path),
            ("name", name),
        ]
    )


def parse_txt(data: bytes) -> dict[str, bytes]:
    """Split TXT RDATA into ``{key: value}`` strictly (order kept, keys lower-cased).

    Refuses: records over :data:`MAX_TXT_BYTES`, truncated or empty strings, keys that are
    not short lowercase tokens, boolean (value-less) attributes and duplicate keys.
    """
    if len(data) > MAX_TXT_BYTES:
        raise TxtTooLargeError(f"TXT record of {len(data)} bytes exceeds {MAX_TXT_BYTES}")
    pairs: dict[str, bytes] = {}
    offset = 0
    while offset < len(data):
        length = data[offset]
        item = data[offset + 1 : offset + 1 + length]
        if length == 0 or len(item) != length:
            raise TxtFormatError("TXT record has an empty or truncated string")
        offset += 1 + length
        raw_key, equals, value = item.partition(b"=")
        if not equals:
            raise TxtFormatError("TXT entry without '=' (boolean attributes are not used)")
        try:
            key = raw_key.decode("ascii").lower()
        except UnicodeDecodeError as exc:
            raise TxtFormatError("TXT key is not ASCII") from exc
        if len(key) > MAX_KEY_LEN or not KEY_RE.fullmatch(key):
            raise TxtFormatError(f"TXT key {key[:20]!r} is not a short lowercase token")
        if key in pairs:
            raise DuplicateTxtKeyError(f"TXT key {key!r} appears twice")
        pairs[key] = value
    return pairs


def _text(pairs: Mapping[str, bytes], key: str) -> str:
    try:
        value = pairs[key].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TxtFormatError(f"TXT {key!r} is not UTF-8") from exc
    if _CONTROL_RE.search(value):
        raise TxtFormatError(f"TXT {key!r} contains control characters")
    return value


def _check_path(path: str) -> str:
    if len(path) > MAX_PATH_LEN or not PATH_RE.fullmatch(path) or "/../" in f"{path}/":
        raise TxtFormatError(f"actor path {path[:40]!r} is not a plain absolute path")
    return path


def parse_advert(data: bytes) -> Advert:
    """Parse and validate a meshnode TXT record into an :class:`Advert`."""
    pairs = parse_txt(data)
    if not pairs or next(iter(pairs)) != "txtvers":
        raise TxtFormatError("TXT record must start with txtvers (RFC 6763 §6.7)")
    missing = [key for key in REQUIRED_KEYS if key not in pairs]
    if missing:
        raise TxtFormatError(f"TXT record misses {', '.join(missing)}")
    if _text(pairs, "txtvers") != TXT_VERSION:
        raise UnsupportedAdvertError(f"unsupported txtvers {_text(pairs, 'txtvers')[:8]!r}")
    version = _text(pairs, "pv")
    if not (version.isascii() and version.isdigit()) or len(version) > 4:  # not "²"
        raise TxtFormatError("TXT pv must be a small integer")
    if int(version) != PROTOCOL_VERSION:
        raise UnsupportedAdvertError(f"unsupported protocol version {version}")
    try:
        key = multikey_to_ed25519_public(_text(pairs, "pk"))
    except KeyFormatError as exc:
        raise TxtFormatError(f"TXT pk is not an Ed25519 Multikey: {exc}") from exc
    name = _text(pairs, "name").strip()
    if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise TxtFormatError(f"TXT name must be 1-{MAX_NAME_BYTES} bytes")
    return Advert(
        public_key=key,
        actor_path=_check_path(_text(pairs, "path")),
        community_name=name,
        protocol_version=int(version),
    )


def _usable(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return None
    return address


def select_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """The addresses worth contacting, best first (IPv4 before IPv6, duplicates dropped).

    Loopback and link-local addresses are dropped when a routable one is offered (a LAN
    node reachable at 192.168.1.20 should not be contacted at 169.254.x.y); when nothing
    else is offered they are kept, which is how nodes on one machine (tests, the demo)
    find each other on 127.0.0.1.
    """
    parsed = [(text, address) for text in addresses if (address := _usable(text)) is not None]
    routable = [
        (text, address)
        for text, address in parsed
        if not (address.is_loopback or address.is_link_local)
    ]
    chosen = routable or parsed
    ordered = sorted(chosen, key=lambda pair: pair[1].version)
    return tuple(dict.fromkeys(text for text, _ in ordered))


def actor_url(address: str, port: int, path: str) -> str:
    """``http://ADDRESS:PORT/PATH`` for an advertised address (IPv6 in brackets)."""
    if not 0 < port < 65536:
        raise AdvertError(f"advertised port {port} is out of range")
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{_check_path(path)}"


# --- Rate limiting -------------------------------------------------------------------------


class TokenBucket:
    """A token bucket driven by the caller's monotonic clock (``take_at(now)``).

    Bounds resolution work under an advert flood: at most ``burst`` at once, then
    ``rate`` per second.
    """

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def _refill_at(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now

    def take_at(self, now: float) -> bool:
        """Take one token if available at time ``now``; False means: not yet."""
        self._refill_at(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def reserve_at(self, now: float) -> float:
        """Take one token now, possibly on credit; returns the seconds to wait before use.

        Each caller waits its own reservation, so concurrent resolvers never spin.
        """
        self._refill_at(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0.0 else -self._tokens / self.rate

    def wait_time_at(self, now: float) -> float:
        """Seconds until a token is available at time ``now`` (0 if one is)."""
        self._refill_at(now)
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate


MAX_VERIFY_ATTEMPTS = 4
VERIFY_BACKOFF_BASE = 2.0
VERIFY_BACKOFF_MAX = 300.0


def verification_backoff(attempts: int) -> float:
    """Seconds before verification attempt ``attempts + 1`` (2, 4, 8 … capped at 5 min)."""
    return min(VERIFY_BACKOFF_MAX, VERIFY_BACKOFF_BASE ** max(1, attempts))
