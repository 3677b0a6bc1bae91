"""A member's data as one zip archive (RGPD, issue 19): profile, listings with every signed
version, messages, deals, ledger entries with their signed documents, IOUs, feedback,
receipts, notifications, with a README in French and English and the public keys that verify
every proof. Written a page of rows at a time into a file the caller gives, so memory stays
bounded whatever the member's history (``scripts/bench_export.py``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from meshnode import urls
from meshnode.errors import NotFoundError
from meshnode.protocol.multikey import ed25519_public_to_multikey
from meshnode.protocol.timefmt import format_utc
from meshnode.services.context import NodeContext
from meshnode.services.members import get_member
from meshnode.services.permissions import require_admin
from meshnode.services.signing import community_actor, member_key_id, node_key_id
from meshnode.store import member_data
from meshnode.store import members as member_store
from meshnode.store.member_data import Owner
from meshnode.store.members import MemberRow

if TYPE_CHECKING:
    import zipfile

PAGE_ROWS = 200
# Columns holding a signed JSON document whose proofs' keys go into keys.json.
SIGNED_COLUMNS = ("signed_object", "document", "offer", "answer", "entry_document")

README = """\
Vos données / Your data — {community}
=====================================

FRANÇAIS
Cette archive contient tout ce que le nœud {base_url} garde sur le compte « {username} »,
exporté le {when} (UTC). Chaque fichier .jsonl contient un objet JSON par ligne :
  profile.jsonl           votre profil (jamais le mot de passe ni les clés privées)
  listings.jsonl          vos annonces, dans leur dernière version signée
  listing_versions.jsonl  chaque version signée de chaque annonce (texte exact publié)
  listing_images.jsonl    les images (fichiers dans media/)
  messages_local.jsonl    vos messages avec les membres de ce nœud
  messages_remote.jsonl   vos messages avec les membres d'autres nœuds
  deals.jsonl, deal_events.jsonl   vos réservations, prêts, achats groupés et leur historique
  feedback.jsonl, receipts.jsonl   les avis donnés et reçus, vos reçus signés
  ledger_entries.jsonl    vos écritures du grand livre, avec le document signé (« document »)
  payment_requests.jsonl  les demandes de paiement
  ious.jsonl              les paiements entre communautés dont vous êtes une partie
  notifications.jsonl, email.jsonl, api_tokens.jsonl, blocked_actors.jsonl
  alerts.jsonl, waiting_lists.jsonl   vos alertes (recherches enregistrées), vos files d'attente
  remote_waiting_lists.jsonl   vos places dans les files d'attente d'autres communautés
  keys.json               les clés publiques qui vérifient chaque preuve (eddsa-jcs-2022)
Les documents signés sont le texte exact enregistré : leurs preuves se vérifient avec
keys.json seul, sans interroger le nœud.

ENGLISH
This archive holds everything the node {base_url} keeps about the account "{username}",
exported on {when} (UTC). Each .jsonl file holds one JSON object per line (see the list
above: profile, listings and every signed version, images in media/, messages on this node
and with other nodes, deals and their history, feedback and signed receipts, ledger entries
with their signed document, payment requests, cross-community IOUs, notifications, e-mail
settings, API tokens (never the secrets), blocked actors, saved searches (alerts) and places
in waiting lists, here and in other communities'). Signed documents are the exact
stored text; keys.json maps each proof's verificationMethod to its Ed25519 public key
(Multikey), so every proof can be checked from this archive alone.
"""


@dataclass
class _Writer:
    """The archive being written, and the verification methods its documents name."""

    archive: zipfile.ZipFile
    methods: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def write_lines(self, handle: IO[bytes], rows: Iterable[dict[str, Any]]) -> None:
        """Append rows as JSON lines, noting the keys of their proofs."""
        for row in rows:
            row.pop("k", None)
            for column in SIGNED_COLUMNS:
                self.methods.update(_proof_methods(row.get(column)))
            handle.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")


def _proof_methods(text: object) -> list[str]:
    """The verificationMethod of every proof on a stored JSON document (text)."""
    if not isinstance(text, str) or '"proof"' not in text:
        return []
    try:
        document = json.loads(text)
    except ValueError:
        return []
    proofs = document.get("proof") if isinstance(document, dict) else None
    items = proofs if isinstance(proofs, list) else [proofs]
    return [p["verificationMethod"] for p in items
            if isinstance(p, dict) and isinstance(p.get("verificationMethod"), str)]


@dataclass(frozen=True)
class ExportSummary:
    """What an archive holds: rows per section."""

    username: str
    counts: dict[str, int]


async def export_for_admin(ctx: NodeContext, admin: MemberRow, username: str,
                           out: IO[bytes]) -> ExportSummary:
    """An admin exports a member's data for them (403 for anyone else)."""
    require_admin(admin, "only administrators can export another member's data")
    return await export_member(ctx, await get_member(ctx, username), out)


async def export_member(ctx: NodeContext, member: MemberRow, out: IO[bytes]) -> ExportSummary:
    """Write the member's archive into ``out`` (a binary file opened for writing)."""
    account = await member_data.account_of(ctx.store.reader, member.id)
    if account is None:
        raise NotFoundError(f"no ledger account for {member.username!r}")
    owner = Owner(member.id, account,
                  urls.member_actor(ctx.config.base_url, member.username))
    import zipfile  # only for an export: not in an idle node's memory (issue 17)

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        writer = _Writer(archive)
        archive.writestr("README.txt", README.format(
            community=ctx.config.name, base_url=ctx.config.base_url,
            username=member.username, when=format_utc(ctx.clock())))
        for section in member_data.SECTIONS:
            await _write_section(ctx, writer, section, owner)
        await _write_media(ctx, writer, owner)
        keys = await _keys_for(ctx, writer.methods)
        archive.writestr("keys.json", json.dumps(keys, indent=1, sort_keys=True))
    return ExportSummary(member.username, writer.counts)


async def _write_section(ctx: NodeContext, writer: _Writer, section: str, owner: Owner) -> None:
    """Stream one section into ``<section>.jsonl``, a page of rows at a time."""
    after, count = 0, 0
    with writer.archive.open(f"{section}.jsonl", "w", force_zip64=True) as handle:
        while True:
            rows = await member_data.section_page(ctx.store.reader, section, owner,
                                                  after=after, limit=PAGE_ROWS)
            if not rows:
                break
            after, count = int(rows[-1]["k"]), count + len(rows)
            await asyncio.to_thread(writer.write_lines, handle, rows)
            if len(rows) < PAGE_ROWS:
                break
    writer.counts[section] = count


async def _write_media(ctx: NodeContext, writer: _Writer, owner: Owner) -> None:
    """Copy the member's listing images (``media/<listing>/<file>``), one file at a time."""
    after = 0
    while rows := await member_data.section_page(ctx.store.reader, "listing_images", owner,
                                                 after=after, limit=PAGE_ROWS):
        after = int(rows[-1]["k"])
        for row in rows:
            path = ctx.config.media_dir / row["listing_id"] / row["filename"]
            if path.is_file():
                await asyncio.to_thread(writer.archive.write, path,
                                        f"media/{row['listing_id']}/{row['filename']}")


async def _keys_for(ctx: NodeContext, methods: set[str]) -> dict[str, str | None]:
    """verificationMethod → Ed25519 Multikey for every proof in the archive (None: unknown)."""
    keys: dict[str, str | None] = {}
    for method in sorted(methods):
        keys[method] = await _key_of(ctx, method)
    return keys


async def _key_of(ctx: NodeContext, method: str) -> str | None:
    """The public key of one verification method: ours, a local member's, or a cached one."""
    if method == node_key_id(ctx):
        return ed25519_public_to_multikey(ctx.identity.ed25519_public)
    actor = method.partition("#")[0]
    prefix = urls.member_actor(ctx.config.base_url, "")
    if actor.startswith(prefix) and actor != community_actor(ctx):
        member = await member_store.get_member_by_username(ctx.store.reader,
                                                           actor[len(prefix):])
        if member is not None and method == member_key_id(ctx, member.username):
            return ed25519_public_to_multikey(member.ed25519_public)
    material = await member_data.remote_ed25519_key(ctx.store.reader, method)
    return None if material is None else ed25519_public_to_multikey(bytes.fromhex(material))
