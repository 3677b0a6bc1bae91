"""The per-listing budget of ingest: what each *required* step costs, measured in-process.

Issue 17's "done when" asks that every figure be printed by a script. ``bench_federation.py
--ingest`` measures the node's CPU per listing end to end; this measures, on the very same
signed requests, the steps REFERENCE.md makes required for each listing (§2: the HTTP
signature and the listing's own eddsa-jcs-2022 proof are both verified; §1: the 202 only
after a durable write), each with the node's own functions and nothing around them (no
HTTP server, no event-loop scheduling, no policy or bookkeeping):

- the door's JSON parse of the body (``jsonparse.loads_capped``: the caps and duplicate-key
  checks are security requirements, so they count as required);
- the HTTP signature's verification (``httpsig.verify_parsed``: Ed25519 and Content-Digest);
- the proof's verification (``proofs.verify_proof``: JCS of the options and of the document,
  two SHA-256, Ed25519), and of it the JCS + hashes alone (``proofs.proof_hashes``);
- the durable inbox row and its commit (``store.federation.insert_inbox_batch`` in group
  commits of ``DOOR_GROUP``, synchronous=FULL as the node runs);
- the listing's rows, its full-text index (triggers), its version row, the inbox marks and
  the commit, by batches of ``INBOX_BATCH`` (``store.ingest.insert_remote_listings``,
  ``store.federation.mark_processed_many``).

CPU is this process's (all threads: SQLite runs in aiosqlite's thread), per listing; the
sum is the floor of one process doing the required work and nothing else, so the node's
CPU minus the sum is overhead (HTTP handling, the loop, policy, reading in our names,
Python around each step) and ``1e6 / sum`` listings a second is the best one core could do.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from nacl.signing import VerifyKey

from meshnode.federation.inbox import INBOX_MAX_DEPTH, activity_head
from meshnode.federation.processing import INBOX_BATCH
from meshnode.federation.remote import VerifiedObject, announce_of, published_at
from meshnode.protocol.activities import origin_of
from meshnode.protocol.canonical import compact_json
from meshnode.protocol.httpsig import check_replay_window, parse_signature, verify_parsed
from meshnode.protocol.inbox_policy import Here, Sender, decide
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.ldread import read_document, signed_form
from meshnode.protocol.listings import parse_proposal
from meshnode.protocol.proofs import proof_hashes, verify_proof
from meshnode.protocol.trust import RULE_REMOTE, SignatureCheck
from meshnode.protocol.vocab import KNOWN_CONTEXTS
from meshnode.services.listings import listing_columns
from meshnode.services.publishing import around_object
from meshnode.store import federation as fq
from meshnode.store import ingest as ingest_store
from meshnode.store.db import Store
from meshnode.store.ingest import NewRemoteListing, QueuedAnnounce

DOOR_GROUP = 16  # activities per door commit: what 32 connections gave (issue 17 notes)
DECIMALS = 2
SignedRequest = tuple[bytes, dict[str, str]]


@dataclass(frozen=True)
class Budget:
    """µs of CPU per listing for each required step, measured on the same listings."""

    json_parse: float
    http_signature: float  # Ed25519 + Content-Digest
    proof: float  # JCS + 2 SHA-256 + Ed25519
    proof_jcs: float  # of which JCS + hashes
    door_commit: float
    listing_commit: float  # listing + FTS + version + inbox marks + commit

    @property
    def total(self) -> float:
        """The sum of the required steps (``proof_jcs`` is part of ``proof``)."""
        return (self.json_parse + self.http_signature + self.proof + self.door_commit
                + self.listing_commit)

    def lines(self, node_cpu: float, baseline_rate: float) -> list[str]:
        """The budget table next to the node's measured CPU per listing (µs) and the
        baseline's rate per second of CPU (both CPU figures: steady under load)."""
        best = 1e6 / self.total
        rows = [("door: JSON parse with its caps (loads_capped)", self.json_parse),
                ("door: HTTP signature verify (Ed25519 + Content-Digest)", self.http_signature),
                ("worker: proof verify (JCS + 2 SHA-256 + Ed25519)", self.proof),
                (f"  of which JCS + SHA-256 (proof_hashes)   [{self.proof_jcs:,.1f}]", None),
                (f"door: inbox row + commit (groups of {DOOR_GROUP}, FULL)", self.door_commit),
                (f"worker: listing + FTS + version + mark + commit (by {INBOX_BATCH})",
                 self.listing_commit)]
        out = ["  budget per listing, required steps measured in-process on the same listings"
               " (µs of CPU, all threads):"]
        out += [f"    {label:<62}{'' if value is None else f'{value:8.1f}'}"
                for label, value in rows]
        out += [f"    {'sum of required steps':<62}{self.total:8.1f}",
                f"    {'node CPU per listing, end to end (measured above)':<62}{node_cpu:8.1f}",
                f"    {'overhead (node CPU - required)':<62}{node_cpu - self.total:8.1f}"
                f"  ({(node_cpu - self.total) / node_cpu:.0%} of the node's CPU)",
                f"    {'node CPU / required':<62}{node_cpu / self.total:8.2f} ×",
                f"  lowest ratio the design could reach on one core (1e6 / sum = {best:,.0f}/s"
                f" against the baseline's {baseline_rate:,.0f} per CPU second): "
                f"{best / baseline_rate:.2f} ×; the node now: "
                f"{1e6 / node_cpu / baseline_rate:.2f} ×"]
        return out


@dataclass(frozen=True)
class Overhead:
    """µs of CPU per listing of the named steps that are not required ones (Python around
    the required work), measured in-process like ``Budget``; what the node spends beyond
    both is aiohttp's request handling, the event loop and aiosqlite's thread hops."""

    signature_parse: float  # RFC 9421 header parse + replay window
    ld_read: float  # read_document (JSON-LD in our names) + the activity's head
    policy: float  # inbox_policy.decide: at the door and again in the worker
    stored_text: float  # the proof's signed form written for storage (compact_json)
    proposal: float  # FEP-0837 Proposal -> validated draft -> listing columns
    announce: float  # the relay Announce: built, encoded, its outbox row written

    @property
    def total(self) -> float:
        """The sum of the named overhead steps."""
        return (self.signature_parse + self.ld_read + self.policy + self.stored_text
                + self.proposal + self.announce)

    def lines(self, unexplained: float, http_floor: float) -> list[str]:
        """The named overhead, then what is left of the gap (µs): ``http_floor`` of it is
        aiohttp alone answering the same requests (``scripts/http_floor.py``)."""
        rows = [("door: signature header parse + replay window", self.signature_parse),
                ("door: JSON-LD reading + activity head", self.ld_read),
                ("door + worker: inbox policy (decide) twice", self.policy),
                ("worker: signed form + compact JSON for storage", self.stored_text),
                ("worker: Proposal -> draft -> listing columns", self.proposal),
                ("worker: relay Announce (build, encode, outbox row)", self.announce)]
        out = ["  overhead measured in-process (not required steps, µs of CPU):"]
        out += [f"    {label:<62}{value:8.1f}" for label, value in rows]
        out += [f"    {'sum of named overhead':<62}{self.total:8.1f}",
                f"    {'rest (node CPU - required - named overhead)':<62}{unexplained:8.1f}",
                f"      {'of which aiohttp alone, same requests (http_floor.py)':<60}"
                f"{http_floor:8.1f}",
                f"      {'left: middlewares, awaits, loop turns, aiosqlite hops':<60}"
                f"{unexplained - http_floor:8.1f}"]
        return out


def _cpu_per_item(work: Callable[[], object], count: int, repeat: int = 3) -> float:
    """µs of this process's CPU per item for ``work`` over ``count`` items: best of
    ``repeat`` (the least disturbed by other processes sharing the core)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best / count * 1e6


async def _store_cpu(work: Awaitable[None], count: int) -> float:
    """µs of this process's CPU (SQLite's thread included) per item of ``work``."""
    start = time.process_time()
    await work
    return (time.process_time() - start) / count * 1e6


def _inbox_rows(requests: Sequence[SignedRequest], activities: Sequence[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    received = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [{"activity_id": act["id"], "actor": act["actor"], "activity_type": act["type"],
             "body": body.decode(), "received_at": received, "origin": origin_of(act["actor"]),
             "size": len(body)} for (body, _), act in zip(requests, activities, strict=True)]


def _listing_rows(documents: Sequence[dict[str, Any]], key_id: str) -> list[NewRemoteListing]:
    checked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = []
    for n, document in enumerate(documents):
        read = read_document(document).document
        draft = parse_proposal(read, decimals=DECIMALS)
        verified = VerifiedObject(document, document["id"], read["attributedTo"], "Proposal",
                                  read["published"], draft, key_id, "", read["published"], "")
        rows.append(NewRemoteListing(
            listing_id=f"{n:016x}", object_id=document["id"], author_uri=verified.author,
            origin=origin_of(document["id"]), columns=listing_columns(draft, DECIMALS),
            published_at=published_at(verified), updated_at=verified.timestamp,
            signed_object=verified.stored_text(),
            check=SignatureCheck(True, key_id, "", RULE_REMOTE, checked)))
    return rows


async def _door_commits(store: Store, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), DOOR_GROUP):
        async with store.transaction() as tx:
            await fq.insert_inbox_batch(tx, rows[start:start + DOOR_GROUP])


async def _listing_commits(store: Store, rows: list[NewRemoteListing]) -> None:
    marked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for start in range(0, len(rows), INBOX_BATCH):
        batch = rows[start:start + INBOX_BATCH]
        async with store.transaction() as tx:
            await ingest_store.insert_remote_listings(tx, batch)
            await fq.mark_processed_many(
                tx, [(start + n + 1, "stored") for n in range(len(batch))], marked)


async def _announce_rows(store: Store, announces: list[QueuedAnnounce]) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for start in range(0, len(announces), INBOX_BATCH):
        batch = announces[start:start + INBOX_BATCH]
        async with store.transaction() as tx:
            await ingest_store.logged_activity_ids(tx, [a.activity_id for a in batch])
            await ingest_store.queue_announces(tx, batch, now)


def _announces(documents: Sequence[dict[str, Any]], group: str) -> list[QueuedAnnounce]:
    """Each listing's relay Announce as the worker queues it (``ingest._relay_run``)."""
    here = SimpleNamespace(community=group)  # all ``announce_of`` reads of the federation
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for n, document in enumerate(documents):
        verified = VerifiedObject(document, document["id"], "", "Proposal", now, None)
        announce = announce_of(here, verified, hops=1, now=now)  # type: ignore[arg-type]
        head, tail = around_object(announce, "object")  # the object is the listing's text
        out.append(QueuedAnnounce(str(announce["id"]), group, document["id"], head, (),
                                  object_of=f"{n:016x}", body_tail=tail))
    return out


async def measure_overhead(requests: Sequence[SignedRequest], url: str,
                           documents: Sequence[dict[str, Any]]) -> Overhead:
    """The ``Overhead`` of ingesting ``documents`` sent as the signed ``requests``."""
    count = len(requests)
    parsed_bodies = [loads_capped(body, max_depth=INBOX_MAX_DEPTH) for body, _ in requests]
    header_lists = [list(headers.items()) for _, headers in requests]
    here = Here(origin=origin_of(url), community=f"{origin_of(url)}/group",  # the receiver
                member_prefix=f"{origin_of(url)}/users/")
    sender = Sender(is_peer=True)
    activities = [read_document(body).document for body in parsed_bodies]
    reads = [read_document(document).document for document in documents]

    def signatures() -> None:
        for headers in header_lists:
            check_replay_window(parse_signature("POST", url, headers))

    signature_parse = _cpu_per_item(signatures, count)
    ld_read = _cpu_per_item(lambda: [activity_head(read_document(body).document)
                                     for body in parsed_bodies], count)
    policy = _cpu_per_item(lambda: [(decide(act, here=here, sender=sender),
                                     decide(act, here=here, sender=sender))
                                    for act in activities], count)
    stored_text = _cpu_per_item(lambda: [compact_json(dict(signed_form(read)), KNOWN_CONTEXTS)
                                         for read in reads], count)
    proposal = _cpu_per_item(lambda: [listing_columns(parse_proposal(read, decimals=DECIMALS),
                                                      DECIMALS) for read in reads], count)
    group = f"{origin_of(url)}/group"
    build = _cpu_per_item(lambda: _announces(documents, group), count)
    announces = _announces(documents, group)
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "announces.db")
        try:
            rows = await _store_cpu(_announce_rows(store, announces), count)
        finally:
            await store.close()
    return Overhead(signature_parse, ld_read, policy, stored_text, proposal, build + rows)


async def measure(requests: Sequence[SignedRequest], url: str, documents: Sequence[dict[str, Any]],
                  public_key: bytes) -> Budget:
    """The ``Budget`` of ingesting ``documents``, sent as the signed ``requests`` to ``url``
    (same order), signed by ``public_key`` (HTTP signature and proofs alike)."""
    count = len(requests)
    activities = [loads_capped(body, max_depth=INBOX_MAX_DEPTH) for body, _ in requests]
    parsed = [parse_signature("POST", url, list(headers.items())) for _, headers in requests]
    key, now = VerifyKey(public_key), int(time.time())
    json_parse = _cpu_per_item(
        lambda: [loads_capped(body, max_depth=INBOX_MAX_DEPTH) for body, _ in requests], count)
    http = _cpu_per_item(lambda: [verify_parsed(p, key, now=now, body=body)
                                  for p, (body, _) in zip(parsed, requests, strict=True)], count)
    proof = _cpu_per_item(lambda: [verify_proof(d, public_key=public_key) for d in documents],
                          count)
    jcs = _cpu_per_item(lambda: [proof_hashes(d, d["proof"]) for d in documents], count)
    inbox_rows = _inbox_rows(requests, activities)
    listing_rows = _listing_rows(documents, documents[0]["proof"]["verificationMethod"])
    with tempfile.TemporaryDirectory() as tmp:  # a fresh node database, as the node runs it
        store = await Store.open(Path(tmp) / "budget.db")
        try:
            door = await _store_cpu(_door_commits(store, inbox_rows), count)
            listing = await _store_cpu(_listing_commits(store, listing_rows), count)
        finally:
            await store.close()
    return Budget(json_parse, http, proof, jcs, door, listing)
