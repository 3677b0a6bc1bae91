"""The system's CA certificates looked up on demand (issue 17, ``services.memory``): a node
that defers them still verifies its HTTPS peers exactly as before, and refuses the others.

Each check runs in a fresh interpreter: the switch is process-wide and acts on the TLS
contexts made after it (aiohttp makes its default one when imported). The certificate
authorities and the server are made here; every connection goes to 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshnode.services import memory
from tests.memload import REPO

# In the child: defer (with the test's directory as the system's), then import aiohttp and
# fetch https://127.0.0.1 from a server presenting the given chain; prints what it saw.
CHILD = r"""
import asyncio, json, ssl, sys
from meshnode.services.memory import defer_ca_certificates
certs, bundle, chain, key = sys.argv[1:5]
paths = ssl.DefaultVerifyPaths(bundle, certs, "SSL_CERT_FILE", bundle, "SSL_CERT_DIR", certs)
deferred = defer_ca_certificates(paths)
import aiohttp, aiohttp.connector
from aiohttp import web

async def main():
    held = aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"]
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(chain, key)
    app = web.Application()
    app.router.add_get("/", lambda request: web.Response(text="hello"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{port}/") as answer:
                seen = await answer.text()
    except aiohttp.ClientConnectorCertificateError:
        seen = "refused"
    finally:
        await runner.cleanup()
    print(json.dumps([deferred, held, seen]))

asyncio.run(main())
"""


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _authority(folder: Path, common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    """A self-signed CA certificate written to ``folder/<common>.pem``; its key and name."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / f"{common}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, _name(common)


def _server(folder: Path, authority: tuple[ec.EllipticCurvePrivateKey, x509.Name]
            ) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by ``authority``: (chain file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(authority[1])
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(authority[0], hashes.SHA256()))
    chain, key_file = folder / "server.pem", folder / "server.key"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return chain, key_file


def _system(tmp_path: Path) -> tuple[Path, Path, tuple[ec.EllipticCurvePrivateKey, x509.Name]]:
    """A stand-in for the system's CAs: a directory with the CA under its subject-hash name
    (as ``update-ca-certificates`` links it) and a bundle of the same CA."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to name a certificate by its subject hash")
    certs = tmp_path / "certs"
    certs.mkdir()
    authority = _authority(certs, "system-ca")
    pem = certs / "system-ca.pem"
    digest = subprocess.run([openssl, "x509", "-subject_hash", "-noout", "-in", str(pem)],
                            capture_output=True, text=True, check=True).stdout.strip()
    (certs / f"{digest}.0").symlink_to(pem.name)
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(pem.read_bytes())
    return certs, bundle, authority


def _fetch(certs: Path, bundle: Path, chain: Path, key: Path) -> list[object]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env.update(PYTHONPATH=str(REPO), SSL_CERT_DIR=str(certs))
    out = subprocess.run([sys.executable, "-c", CHILD, str(certs), str(bundle), str(chain),
                          str(key)], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result: list[object] = json.loads(out.stdout)
    return result


def test_memory_tls__deferred_ca_certificates_still_verify_a_peer_of_a_system_ca(
        tmp_path: Path) -> None:
    # Given the system's CAs in a bundle and a hashed directory, and a peer whose
    # certificate one of them signed
    certs, bundle, authority = _system(tmp_path)
    chain, key = _server(tmp_path, authority)
    # When a fresh process defers the CA certificates, imports aiohttp and fetches the peer
    deferred, held, seen = _fetch(certs, bundle, chain, key)
    # Then aiohttp's default context held no certificate, and the peer was still verified
    assert (deferred, held, seen) == (True, 0, "hello")


def test_memory_tls__deferred_ca_certificates_still_refuse_an_unknown_authority(
        tmp_path: Path) -> None:
    # Given the same system CAs, and a peer whose certificate an unknown CA signed
    certs, bundle, _ = _system(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    chain, key = _server(tmp_path, _authority(elsewhere, "unknown-ca"))
    # When a fresh process defers the CA certificates and fetches the peer
    deferred, held, seen = _fetch(certs, bundle, chain, key)
    # Then the connection is refused: deferring never loosens verification
    assert (deferred, held, seen) == (True, 0, "refused")


def _paths(bundle: Path, certs: Path) -> ssl.DefaultVerifyPaths:
    return ssl.DefaultVerifyPaths(str(bundle), str(certs), "SSL_CERT_FILE", str(bundle),
                                  "SSL_CERT_DIR", str(certs))


def test_memory_tls__an_operators_own_bundle_is_kept(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a hashed directory, and an operator's SSL_CERT_FILE naming a bundle of their own
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "0a1b2c3d.0").write_bytes(b"")
    system, own = tmp_path / "system.crt", tmp_path / "own.crt"
    system.write_bytes(memory.PEM_BEGIN)
    own.write_bytes(memory.PEM_BEGIN)
    monkeypatch.setenv("SSL_CERT_FILE", str(own))
    # When the node would defer the CA certificates
    deferred = memory.defer_ca_certificates(_paths(system, certs))
    # Then it does not: the operator's bundle is loaded as before
    assert deferred is False
    assert os.environ["SSL_CERT_FILE"] == str(own)


def test_memory_tls__a_bundle_larger_than_the_hashed_directory_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the system bundle with two CAs, and a hashed directory listing only one
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "0a1b2c3d.0").write_bytes(b"")
    (certs / "README").write_bytes(b"")
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(memory.PEM_BEGIN * 2)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    # When the node would defer the CA certificates
    deferred = memory.defer_ca_certificates(_paths(bundle, certs))
    # Then it does not (a CA only in the bundle would be lost), and nothing was changed
    assert deferred is False
    assert "SSL_CERT_FILE" not in os.environ
