"""The guarded client's address rules: what the node refuses to contact, whatever the config.

Link-local (cloud metadata), "this network", multicast and broadcast are refused even with
``allow_private_addresses = true`` and for hosts an admin trusted; LAN addresses stay allowed.
"""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from meshnode.federation.http import FederationClient, FetchError, GuardedResolver, UrlGuard
from meshnode.federation.neighbour_verifier import (
    NeighbourVerifier,
    VerificationFailed,
    VerifierHttp,
)
from meshnode.store.neighbours import NeighbourRow

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.1.1:8080/actor",
    "http://[fe80::1]/actor",
    "http://0.0.0.0:8080/actor",
    "http://0.1.2.3/actor",
    "http://224.0.0.251:5353/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://[::ffff:169.254.169.254]/latest",
    "http://100.100.100.200/latest/meta-data/",
    "http://[fd00:ec2::254]/latest",
    "http://[::]/",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_url_guard__link_local_metadata_and_multicast_refused_even_when_private_allowed(
        url: str) -> None:
    guard = UrlGuard(allow_private=True, trusted_hosts={"169.254.169.254"})
    with pytest.raises(FetchError, match="refusing"):
        await guard.check(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/a", "http://192.168.1.20/a",
                                 "http://10.0.0.2/a", "http://[::1]:8080/a",
                                 "http://100.64.0.7/a"])
async def test_url_guard__lan_and_loopback_stay_allowed_by_default(url: str) -> None:
    await UrlGuard(allow_private=True).check(url)


async def test_url_guard__private_refused_when_turned_off_unless_trusted() -> None:
    guard = UrlGuard(allow_private=False)
    with pytest.raises(FetchError, match="private"):
        await guard.check("http://192.168.1.20/a")
    guard.trusted_hosts.add("192.168.1.20")
    await guard.check("http://192.168.1.20/a")


class FixedResolver(AbstractResolver):
    """Stands in for DNS (no DNS server may be used here): every name has these addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=address, port=port, family=family,
                              proto=0, flags=0) for address in self.addresses]

    async def close(self) -> None:
        return None


async def test_guarded_resolver__drops_metadata_addresses_a_name_resolves_to() -> None:
    # Given a name that resolves to the metadata address and to a LAN address
    resolver = GuardedResolver(UrlGuard(), FixedResolver("169.254.169.254", "192.168.1.20"))
    # Then only the LAN address is kept
    assert [r["host"] for r in await resolver.resolve("rebind.test", 80)] == ["192.168.1.20"]


async def test_guarded_resolver__a_name_with_only_refused_addresses_is_never_connected() -> None:
    # Given a client whose DNS says a name is the metadata address (DNS rebinding)
    guard = UrlGuard(allow_private=True)
    resolver = GuardedResolver(guard, FixedResolver("169.254.169.254"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver)) as s:
        client = FederationClient(s, guard)
        # When the node fetches it, Then the connection is refused before any packet
        with pytest.raises(FetchError):
            await client.get_json("http://metadata.rebind.test/latest/meta-data/")


async def test_guarded_resolver__the_system_resolver_still_finds_localhost() -> None:
    # Given the resolver the node's client uses (system resolver inside; /etc/hosts, no DNS)
    resolver = GuardedResolver(UrlGuard(allow_private=True))
    try:
        # Then loopback names still resolve (nodes on one machine, the demo)
        hosts = {result["host"] for result in await resolver.resolve("localhost", 80)}
    finally:
        await resolver.close()
    assert hosts & {"127.0.0.1", "::1"}


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1%2", "0.0.0.0"])
async def test_neighbour_verifier__an_advert_pointing_at_link_local_is_never_contacted(
        address: str) -> None:
    # Given an mDNS advert (on the LAN, anyone can send one) naming a metadata address
    row = NeighbourRow(
        id=1, instance_name="evil", fingerprint="f", public_key=b"\x01" * 32,
        community_name="Evil", actor_path="/groups/evil", protocol_version=1,
        addresses=(address,), port=80, status="discovered", actor_url=None, approved=False,
        blocked=False, attempts=0, next_attempt_at=None, first_seen="", last_seen="",
        verified_at=None, last_error=None)
    async with aiohttp.ClientSession() as session:
        async def never(_ctx: object, _url: str) -> None:
            raise AssertionError("must not peer")

        verifier = NeighbourVerifier(None, VerifierHttp(session),  # type: ignore[arg-type]
                                     request_peering=never)
        # When the verifier (which allows LAN addresses) tries it, Then it refuses before
        # sending anything (a real connection to 169.254.169.254 would hang, not fail)
        with pytest.raises(VerificationFailed, match="link-local"):
            await verifier.verify_at(row, address)
