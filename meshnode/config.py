"""Node configuration: a frozen dataclass loaded from ``config.toml`` in the data directory.

Configuration is always passed in explicitly (``create_app(config)``); nothing reads it
at import time.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w

CONFIG_FILE = "config.toml"
DATABASE_FILE = "meshnode.sqlite3"
KEYS_DIR = "keys"
MEDIA_DIR = "media"

HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,29}$")
LOCALES = ("fr", "en")

PeeringPolicy = Literal["auto", "approve"]
DiscoveryPolicy = Literal["auto", "approve", "off"]
SyncMode = Literal["full", "normal"]


class ConfigError(Exception):
    """The configuration or a command-line value is invalid; the message says how to fix it."""


@dataclass(frozen=True)
class CurrencyConfig:
    """The community's mutual-credit currency (see REFERENCE.md §6)."""

    name: str = "Grain"
    symbol: str = "G"
    decimals: int = 2
    default_min_balance: str = "-300"
    default_max_balance: str = "1000"


@dataclass(frozen=True)
class InboxLimits:
    """Inbox quotas and retention (``[federation]`` keys ``inbox_<name>``)."""

    retention_days: int = 7  # processed inbox rows are deleted after this
    # What one origin may get stored per hour: peers (nodes we follow) and strangers.
    peer_rows_per_hour: int = 3600
    peer_bytes_per_hour: int = 64 * 1024 * 1024
    stranger_rows_per_hour: int = 120
    stranger_bytes_per_hour: int = 2 * 1024 * 1024
    # Remote key fetches per origin per hour (each unknown key costs us a GET).
    key_fetches_per_hour: int = 60
    # ... and for all non-peer origins together: one origin per port would otherwise let a
    # stranger have the node knock on every port of a host, 60 times an hour each.
    stranger_key_fetches_per_hour: int = 600


@dataclass(frozen=True)
class LimitsConfig:
    """What one member may create per hour (``[limits]``); 0 means no limit.

    Generous for people, tight for scripts: issue 12 saw 2,000 listings in 7.6 s from one
    member. Past the limit the API answers 429 with ``Retry-After`` and nothing is stored.
    """

    listings_per_hour: int = 60
    messages_per_hour: int = 300
    payment_requests_per_hour: int = 60
    # Messages one member of another node may send one of ours per hour (refused beyond).
    remote_messages_per_hour: int = 30


STARTER_NEIGHBOURS = ("mdns", "peered")


@dataclass(frozen=True)
class StarterLineConfig:
    """Starter trust lines (``[trust.starter]``): offered, never opened, to neighbours.

    When ``enabled``, the node offers one small line to each neighbour it verified over mDNS
    (``"mdns"``) and/or peered with (``"peered"``); the other admin accepts or declines.
    ``limit_out``: what we may owe them; ``limit_in``: what they may owe us (our currency);
    ``rate``: how many of their units one of ours is worth.
    """

    enabled: bool = False
    limit_out: str = "20"
    limit_in: str = "20"
    rate: str = "1"
    neighbours: tuple[str, ...] = STARTER_NEIGHBOURS


@dataclass(frozen=True)
class MapConfig:
    """The network map (``[map]``): ``public`` serves ``/network`` to anyone;
    ``public_balances`` shows trust lines' limits and balances there too (admins always
    see them on ``/admin/network``)."""

    public: bool = True
    public_balances: bool = False


EmailSecurity = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class EmailConfig:
    """The community's SMTP server (``[email]``); without the section nothing is e-mailed.

    ``security``: ``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or ``none``
    (a relay on the same machine only). ``digest_hour``: local hour (community timezone) at
    which members who chose a daily digest get it.
    """

    host: str
    from_address: str
    port: int = 587
    security: EmailSecurity = "starttls"
    user: str = ""
    password: str = field(default="", repr=False)
    digest_hour: int = 7


@dataclass(frozen=True)
class Config:
    """Everything a node needs to run; one instance per node, immutable."""

    data_dir: Path
    name: str
    handle: str
    public_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    default_locale: str = "fr"
    timezone: str = "Europe/Paris"
    synchronous: SyncMode = "full"
    max_body_bytes: int = 256 * 1024
    max_image_bytes: int = 5 * 1024 * 1024
    max_images: int = 4
    peering_policy: PeeringPolicy = "auto"
    discovery_policy: DiscoveryPolicy = "auto"
    relay_hop_limit: int = 2
    # Names of remote members and communities shown on pages are re-fetched from their actor
    # documents in the background once older than this (federation/names.py).
    actor_refresh_hours: float = 24.0
    # Community nodes live on LANs, so fetching private addresses is allowed by default.
    allow_private_addresses: bool = True
    # Delivery: requests in flight to one remote host at once (federation/delivery.py).
    delivery_concurrency: int = 8
    # mDNS: bind zeroconf to these addresses (and advertise them); empty = the bind host
    # when it is a specific address, else every interface. Tests use ("127.0.0.1",).
    discovery_interfaces: tuple[str, ...] = ()
    currency: CurrencyConfig = field(default_factory=CurrencyConfig)
    # Cross-node payments: how long POST /api/v1/transfers waits for the outcome (then 202),
    # and how often each line's balance statement is sent to the peer.
    iou_sync_wait: float = 5.0
    iou_reconcile_seconds: float = 300.0
    # Anonymous visitors' pages (home, search, listings) are served from memory for this
    # many seconds unless this node wrote anything meanwhile; 0 turns the cache off.
    page_cache_seconds: float = 5.0
    inbox: InboxLimits = field(default_factory=InboxLimits)
    # What visitors and members can hold (see docs/security.md): images are judged
    # from their header (pixels, then the bytes the decode will take) and decoded one at a
    # time; slow clients are cut off; connections beyond the cap evict idle ones first.
    max_image_pixels: int = 24_000_000
    image_decode_mib: int = 80
    max_concurrent_uploads: int = 4
    header_timeout: float = 15.0
    body_timeout: float = 60.0
    max_connections: int = 256
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    email: EmailConfig | None = None
    starter: StarterLineConfig = field(default_factory=StarterLineConfig)
    map: MapConfig = field(default_factory=MapConfig)

    @property
    def database_path(self) -> Path:
        """Path of the SQLite database file."""
        return self.data_dir / DATABASE_FILE

    @property
    def keys_dir(self) -> Path:
        """Directory holding the node's private key files (mode 0700, files 0600)."""
        return self.data_dir / KEYS_DIR

    @property
    def media_dir(self) -> Path:
        """Directory holding uploaded, re-encoded listing images."""
        return self.data_dir / MEDIA_DIR

    @property
    def base_url(self) -> str:
        """The public URL without a trailing slash."""
        return self.public_url.rstrip("/")

    def with_overrides(self, *, host: str | None = None, port: int | None = None) -> Config:
        """Return a copy with the bind address overridden (``meshnode run --host/--port``)."""
        return replace(
            self,
            host=host if host is not None else self.host,
            port=port if port is not None else self.port,
        )


def validate_handle(handle: str) -> str:
    """Check a community or member handle: lowercase letters, digits, underscore, 1-30 chars."""
    if not HANDLE_RE.fullmatch(handle):
        raise ConfigError(
            f"invalid handle {handle!r}: use 1-30 lowercase letters, digits or '_', "
            "starting with a letter or digit (e.g. 'voisins')"
        )
    return handle


def validate_public_url(url: str) -> str:
    """Check the node's public URL: http(s), a host, no query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"invalid public URL {url!r}: expected http(s)://host[:port], "
            "e.g. http://192.168.1.20:8080"
        )
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(f"invalid public URL {url!r}: no query, fragment or credentials")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid public URL {url!r}: bad port") from exc
    return url.rstrip("/")


def _validate_amount(text: str, label: str) -> None:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ConfigError(f"currency.{label} must be a decimal number, got {text!r}") from exc
    if not value.is_finite():
        raise ConfigError(f"currency.{label} must be finite")


def _validate_interfaces(interfaces: tuple[str, ...]) -> None:
    for address in interfaces:
        try:
            ipaddress.ip_address(address)
        except ValueError as exc:
            raise ConfigError(
                f"discovery.interfaces: {address!r} is not an IP address (e.g. '192.168.1.20')"
            ) from exc


def _validate_inbox(limits: InboxLimits) -> None:
    if not 1 <= limits.retention_days <= 3650:
        raise ConfigError("federation.inbox_retention_days must be 1-3650")
    for item in fields(limits):
        if getattr(limits, item.name) < 1:
            raise ConfigError(f"federation.inbox_{item.name} must be at least 1")


def _inbox_limits(section: dict[str, Any]) -> InboxLimits:
    defaults = InboxLimits()
    return InboxLimits(**{item.name: int(section.get(f"inbox_{item.name}",
                                                     getattr(defaults, item.name)))
                          for item in fields(InboxLimits)})


def _validate_server_limits(config: Config) -> None:
    checks = (
        ("max_image_pixels", config.max_image_pixels, 1_000_000, 200_000_000),
        ("image_decode_mib", config.image_decode_mib, 16, 4096),
        ("max_concurrent_uploads", config.max_concurrent_uploads, 1, 64),
        ("header_timeout", config.header_timeout, 0.1, 3600),
        ("body_timeout", config.body_timeout, 0.1, 3600),
        ("max_connections", config.max_connections, 8, 100_000),
    )
    for name, value, low, high in checks:
        if not low <= value <= high:
            raise ConfigError(f"server.{name} must be {low}-{high}, got {value}")


def validate(config: Config) -> Config:
    """Validate a whole configuration, raising ConfigError with a precise message."""
    validate_handle(config.handle)
    validate_public_url(config.public_url)
    if not config.name.strip() or len(config.name) > 80:
        raise ConfigError("community name must be 1-80 characters")
    if config.default_locale not in LOCALES:
        raise ConfigError(f"default_locale must be one of {', '.join(LOCALES)}")
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown timezone {config.timezone!r}, e.g. Europe/Paris") from exc
    if not 0 < config.port < 65536:
        raise ConfigError(f"port must be 1-65535, got {config.port}")
    if config.synchronous not in ("full", "normal"):
        raise ConfigError("storage.synchronous must be 'full' or 'normal'")
    if config.peering_policy not in ("auto", "approve"):
        raise ConfigError("federation.peering_policy must be 'auto' or 'approve'")
    if config.discovery_policy not in ("auto", "approve", "off"):
        raise ConfigError("discovery.policy must be 'auto', 'approve' or 'off'")
    if not 0 <= config.relay_hop_limit <= 20:
        raise ConfigError("federation.relay_hop_limit must be 0-20")
    if not 1 <= config.delivery_concurrency <= 64:
        raise ConfigError("federation.delivery_concurrency must be 1-64")
    if not 0.1 <= config.actor_refresh_hours <= 24 * 30:
        raise ConfigError("federation.actor_refresh_hours must be 0.1-720")
    if not 0 <= config.page_cache_seconds <= 300:
        raise ConfigError("server.page_cache_seconds must be 0-300")
    _validate_server_limits(config)
    _validate_interfaces(config.discovery_interfaces)
    _validate_inbox(config.inbox)
    if not 0 <= config.currency.decimals <= 2:
        raise ConfigError("currency.decimals must be 0, 1 or 2")
    _validate_amount(config.currency.default_min_balance, "default_min_balance")
    _validate_amount(config.currency.default_max_balance, "default_max_balance")
    for name, value in asdict(config.limits).items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
            raise ConfigError(f"limits.{name} must be a whole number 0-1000000 (0: no limit)")
    if config.email is not None:
        _validate_email(config.email)
    _validate_starter(config.starter, config.currency.decimals)
    return config


def _validate_starter(starter: StarterLineConfig, decimals: int) -> None:
    for name in ("limit_out", "limit_in", "rate"):
        text = getattr(starter, name)
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            raise ConfigError(f"trust.starter.{name} must be a decimal number, got {text!r}"
                              ) from exc
        if not value.is_finite() or value < 0 or (name == "rate" and value == 0):
            raise ConfigError(f"trust.starter.{name} must be a positive decimal, e.g. 20")
        if name != "rate" and -int(value.as_tuple().exponent) > decimals:
            raise ConfigError(f"trust.starter.{name} has more decimals than the currency")
    unknown = set(starter.neighbours) - set(STARTER_NEIGHBOURS)
    if unknown:
        raise ConfigError("trust.starter.neighbours may only list \"mdns\" and \"peered\"")


def _starter_config(raw: dict[str, Any]) -> StarterLineConfig:
    values = dict(raw.get("trust", {}).get("starter", {}))
    unknown = set(values) - {f.name for f in fields(StarterLineConfig)}
    if unknown:
        raise ConfigError(f"{CONFIG_FILE}: unknown [trust.starter] settings:"
                          f" {', '.join(sorted(unknown))}")
    for name in ("limit_out", "limit_in", "rate"):
        if name in values:
            values[name] = str(values[name])
    if "neighbours" in values:
        values["neighbours"] = tuple(str(item) for item in values["neighbours"])
    if "enabled" in values and not isinstance(values["enabled"], bool):
        raise ConfigError("trust.starter.enabled must be true or false")
    return StarterLineConfig(**values)


def _map_config(raw: dict[str, Any]) -> MapConfig:
    values = raw.get("map", {})
    unknown = set(values) - {f.name for f in fields(MapConfig)}
    if unknown or not all(isinstance(value, bool) for value in values.values()):
        raise ConfigError(f"{CONFIG_FILE}: [map] takes public and public_balances,"
                          " each true or false")
    return MapConfig(**values)


def _validate_email(email: EmailConfig) -> None:
    if not email.host.strip() or any(c.isspace() for c in email.host):
        raise ConfigError("email.host must be the SMTP server's name, e.g. smtp.example.org")
    if not 0 < email.port < 65536:
        raise ConfigError(f"email.port must be 1-65535, got {email.port}")
    if email.security not in ("starttls", "tls", "none"):
        raise ConfigError("email.security must be 'starttls', 'tls' or 'none'")
    if email.from_address.count("@") != 1 or any(c.isspace() or c in "<>\r\n"
                                                 for c in email.from_address):
        raise ConfigError("email.from must be an address, e.g. voisins@example.org")
    if not 0 <= email.digest_hour <= 23:
        raise ConfigError("email.digest_hour must be 0-23")
    if bool(email.user) != bool(email.password):
        raise ConfigError("email.user and email.password go together (or neither)")


def _email_config(raw: dict[str, Any] | None) -> EmailConfig | None:
    """``[email]`` with ``from`` (a Python keyword) read as ``from_address``."""
    if raw is None:
        return None
    values = dict(raw)
    if "from" not in values:
        raise ConfigError(f"{CONFIG_FILE}: [email] needs from = \"address@example.org\"")
    values["from_address"] = str(values.pop("from"))
    unknown = set(values) - {f.name for f in fields(EmailConfig)}
    if unknown:
        raise ConfigError(f"{CONFIG_FILE}: unknown [email] settings: {', '.join(sorted(unknown))}")
    return EmailConfig(**values)


def to_toml_dict(config: Config) -> dict[str, Any]:
    """The TOML layout written by ``meshnode init`` (sections mirror the README)."""
    return {
        "community": {
            "name": config.name,
            "handle": config.handle,
            "public_url": config.public_url,
            "default_locale": config.default_locale,
            "timezone": config.timezone,
        },
        "server": {
            "host": config.host,
            "port": config.port,
            "max_body_bytes": config.max_body_bytes,
            "max_image_bytes": config.max_image_bytes,
            "max_images": config.max_images,
            "page_cache_seconds": config.page_cache_seconds,
            **{key: getattr(config, key) for key in SERVER_LIMIT_KEYS},
        },
        "storage": {"synchronous": config.synchronous},
        "currency": asdict(config.currency),
        "federation": {
            "peering_policy": config.peering_policy,
            "relay_hop_limit": config.relay_hop_limit,
            "actor_refresh_hours": config.actor_refresh_hours,
            "allow_private_addresses": config.allow_private_addresses,
            "delivery_concurrency": config.delivery_concurrency,
            **{f"inbox_{name}": value for name, value in asdict(config.inbox).items()},
        },
        "discovery": {
            "policy": config.discovery_policy,
            "interfaces": list(config.discovery_interfaces),
        },
        "iou": {"sync_wait": config.iou_sync_wait,
                "reconcile_seconds": config.iou_reconcile_seconds},
        "limits": asdict(config.limits),
        "trust": {"starter": {**asdict(config.starter),
                              "neighbours": list(config.starter.neighbours)}},
        "map": asdict(config.map),
        **({} if config.email is None else {"email": _email_toml(config.email)}),
    }


def _email_toml(email: EmailConfig) -> dict[str, Any]:
    values = asdict(email)
    values["from"] = values.pop("from_address")
    return values


SERVER_LIMIT_KEYS = ("max_image_pixels", "image_decode_mib", "max_concurrent_uploads",
                     "header_timeout", "body_timeout", "max_connections")


def _server_limits(server: dict[str, Any], defaults: Config) -> dict[str, Any]:
    """The ``[server]`` resource limits, each converted to its default's type."""
    return {key: type(getattr(defaults, key))(server.get(key, getattr(defaults, key)))
            for key in SERVER_LIMIT_KEYS}


def from_toml_dict(data_dir: Path, raw: dict[str, Any]) -> Config:
    """Build a Config from parsed TOML, applying defaults for missing keys."""
    community = raw.get("community", {})
    server = raw.get("server", {})
    defaults = Config(data_dir=data_dir, name="x", handle="x", public_url="http://x")
    try:
        config = Config(
            data_dir=data_dir,
            name=str(community["name"]),
            handle=str(community["handle"]),
            public_url=str(community["public_url"]),
            default_locale=str(community.get("default_locale", defaults.default_locale)),
            timezone=str(community.get("timezone", defaults.timezone)),
            host=str(server.get("host", defaults.host)),
            port=int(server.get("port", defaults.port)),
            max_body_bytes=int(server.get("max_body_bytes", defaults.max_body_bytes)),
            max_image_bytes=int(server.get("max_image_bytes", defaults.max_image_bytes)),
            max_images=int(server.get("max_images", defaults.max_images)),
            page_cache_seconds=float(
                server.get("page_cache_seconds", defaults.page_cache_seconds)),
            **_server_limits(server, defaults),
            synchronous=raw.get("storage", {}).get("synchronous", defaults.synchronous),
            currency=CurrencyConfig(**raw.get("currency", {})),
            peering_policy=raw.get("federation", {}).get("peering_policy", "auto"),
            relay_hop_limit=int(raw.get("federation", {}).get("relay_hop_limit", 2)),
            actor_refresh_hours=float(raw.get("federation", {}).get(
                "actor_refresh_hours", defaults.actor_refresh_hours)),
            allow_private_addresses=bool(
                raw.get("federation", {}).get("allow_private_addresses", True)),
            delivery_concurrency=int(raw.get("federation", {}).get(
                "delivery_concurrency", defaults.delivery_concurrency)),
            inbox=_inbox_limits(raw.get("federation", {})),
            discovery_policy=raw.get("discovery", {}).get("policy", "auto"),
            discovery_interfaces=tuple(
                str(item) for item in raw.get("discovery", {}).get("interfaces", [])
            ),
            iou_sync_wait=float(raw.get("iou", {}).get("sync_wait", defaults.iou_sync_wait)),
            iou_reconcile_seconds=float(raw.get("iou", {}).get(
                "reconcile_seconds", defaults.iou_reconcile_seconds)),
            limits=LimitsConfig(**raw.get("limits", {})),
            email=_email_config(raw.get("email")),
            starter=_starter_config(raw),
            map=_map_config(raw),
        )
    except KeyError as exc:
        raise ConfigError(f"{CONFIG_FILE}: missing required setting {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{CONFIG_FILE}: {exc}") from exc
    return validate(config)


def load_config(data_dir: Path) -> Config:
    """Read and validate ``DATA_DIR/config.toml``."""
    path = data_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"no node in {data_dir}: {CONFIG_FILE} not found (create one with 'meshnode init')"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return from_toml_dict(data_dir.resolve(), raw)


def write_config(config: Config) -> None:
    """Write ``config.toml`` for a new node (mode 0600: an admin may add the SMTP password)."""
    path = config.data_dir / CONFIG_FILE
    path.write_text(tomli_w.dumps(to_toml_dict(config)), encoding="utf-8")
    path.chmod(0o600)
