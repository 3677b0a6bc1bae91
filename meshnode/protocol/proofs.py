"""Object integrity proofs: W3C Data Integrity ``eddsa-jcs-2022`` as used by FEP-8b32.

* Cryptosuite: https://www.w3.org/TR/vc-di-eddsa/#eddsa-jcs-2022
* Fediverse profile: https://w3id.org/fep/8b32

hashData = SHA-256(JCS(proof options)) || SHA-256(JCS(document without proof));
``proofValue`` = ``"z" + base58btc(Ed25519 signature of hashData)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import SigningKey, VerifyKey

from meshnode.protocol.canonical import KnownContexts, canonicalize
from meshnode.protocol.errors import KeyFormatError, ProofError, ValidationError
from meshnode.protocol.multikey import b58decode, b58encode
from meshnode.protocol.records import quick_init
from meshnode.protocol.vocab import KNOWN_CONTEXTS

__all__ = [
    "CRYPTOSUITE",
    "PROOF_TYPE",
    "ProofVerdict",
    "create_proof",
    "format_created",
    "proof_hashes",
    "proof_verification_method",
    "verify_proof",
]

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
ED25519_SIGNATURE_LEN = 64
# Fields stripped from the document before hashing: the proof itself, and a
# legacy Linked Data Signature some servers still attach (REFERENCE §3).
_UNSIGNED_FIELDS = ("proof", "signature")


@quick_init
@dataclass(frozen=True)
class ProofVerdict:
    """The result of a proof that verified: who signed, when, for what purpose."""

    verification_method: str
    created: datetime | None
    purpose: str


def format_created(when: datetime) -> str:
    """Format ``when`` as an XML Schema dateTime in UTC, whole seconds, ``Z`` suffix.

    Fedify rejects Python's ``+00:00`` form (REFERENCE §3), hence the explicit format.
    A naive datetime is taken to be UTC already.
    """
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _unsecured(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in _UNSIGNED_FIELDS}


def _proof_config(document: Mapping[str, Any], proof_options: Mapping[str, Any]) -> dict[str, Any]:
    # vc-di-eddsa §3.3.5 "Proof Configuration (eddsa-jcs-2022)": the proof
    # options carry the document's @context when the document has one.
    config = {key: value for key, value in proof_options.items() if key != "proofValue"}
    if "@context" in document and "@context" not in config:
        config["@context"] = document["@context"]
    return config


def _sha256_jcs(value: Any, what: str, known: KnownContexts, plain: bool) -> bytes:
    try:
        return hashlib.sha256(canonicalize(value, known, plain=plain)).digest()
    except ValidationError as exc:
        raise ProofError(f"{what} cannot be canonicalised: {exc}") from exc


def proof_hashes(
    document: Mapping[str, Any], proof_options: Mapping[str, Any], *, plain: bool = False
) -> tuple[bytes, bytes]:
    """Return ``(proof_options_hash, document_hash)`` per eddsa-jcs-2022 §3.3.3–3.3.5.

    ``proofValue`` is dropped from the options; ``proof`` and ``signature`` are
    dropped from the document. Raises :class:`ProofError` if JCS cannot encode either.
    ``plain``: ``compact_json(document, KNOWN_CONTEXTS)`` accepted the document, and the
    options are its own proof (``canonical.canonicalize``: not walked again).
    """
    # Both hash the document's @context: compared with our known ones once.
    known = KNOWN_CONTEXTS.narrowed(document.get("@context"))
    options_hash = _sha256_jcs(_proof_config(document, proof_options), "proof options", known,
                               plain)
    document_hash = _sha256_jcs(_unsecured(document), "document", known, plain)
    return options_hash, document_hash


def create_proof(
    document: Mapping[str, Any],
    *,
    seed: bytes,
    verification_method: str,
    created: datetime,
    proof_purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """Return a new dict: ``document`` plus an eddsa-jcs-2022 ``proof`` signed with ``seed``.

    The proof has exactly the fields Fedify expects (no ``id``, no ``@context``).
    Raises :class:`KeyFormatError` for a seed that is not 32 bytes.
    """
    if len(seed) != 32:
        raise KeyFormatError(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
    options: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
        "created": format_created(created),
    }
    options_hash, document_hash = proof_hashes(document, options)
    signature = SigningKey(seed).sign(options_hash + document_hash).signature
    # A legacy LD ``signature`` stays in the output; it is simply not hashed.
    secured = {key: value for key, value in document.items() if key != "proof"}
    secured["proof"] = options | {"proofValue": "z" + b58encode(signature)}
    return secured


def _get_proof(document: Mapping[str, Any]) -> Mapping[str, Any]:
    proof = document.get("proof")
    if proof is None:
        raise ProofError("document has no proof")
    if not isinstance(proof, Mapping):
        raise ProofError("proof must be a single JSON object")
    return proof


def proof_verification_method(document: Mapping[str, Any]) -> str:
    """Return the proof's ``verificationMethod`` so the caller can fetch the key first."""
    method = _get_proof(document).get("verificationMethod")
    if not isinstance(method, str) or not method:
        raise ProofError("proof has no verificationMethod")
    return method


def _check_suite(proof: Mapping[str, Any], expected_purpose: str) -> None:
    if proof.get("type") != PROOF_TYPE:
        raise ProofError(f"proof type must be {PROOF_TYPE!r}, got {proof.get('type')!r}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(f"cryptosuite must be {CRYPTOSUITE!r}, got {proof.get('cryptosuite')!r}")
    if proof.get("proofPurpose") != expected_purpose:
        raise ProofError(
            f"proofPurpose must be {expected_purpose!r}, got {proof.get('proofPurpose')!r}"
        )


def _check_context(document: Mapping[str, Any], proof: Mapping[str, Any]) -> None:
    # vc-di-eddsa §3.3.2 step 3: a proof @context must be a prefix of the document's.
    if "@context" not in proof:
        return
    proof_ctx = proof["@context"]
    doc_ctx = document.get("@context")
    proof_list = proof_ctx if isinstance(proof_ctx, list) else [proof_ctx]
    doc_list = doc_ctx if isinstance(doc_ctx, list) else [doc_ctx]
    if doc_list[: len(proof_list)] != proof_list:
        raise ProofError("proof @context does not match the document @context")


def _decode_proof_value(proof: Mapping[str, Any]) -> bytes:
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofError("proofValue must be a base58btc multibase string (prefix 'z')")
    try:
        signature = b58decode(value[1:])
    except KeyFormatError as exc:
        raise ProofError(f"proofValue is not valid base58btc: {exc}") from exc
    if len(signature) != ED25519_SIGNATURE_LEN:
        raise ProofError(f"proofValue must hold a 64-byte signature, got {len(signature)}")
    return signature


def _parse_created(proof: Mapping[str, Any]) -> datetime | None:
    created = proof.get("created")
    if created is None:
        return None
    if not isinstance(created, str):
        raise ProofError("proof created must be a dateTime string")
    try:
        parsed = datetime.fromisoformat(created)
    except ValueError as exc:
        raise ProofError(f"proof created is not a dateTime: {created!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    try:
        VerifyKey(public_key).verify(message, signature)
    except BadSignatureError as exc:
        raise ProofError("proof signature does not verify with the given key") from exc
    except (NaclValueError, TypeError) as exc:
        raise ProofError(f"unusable Ed25519 public key: {exc}") from exc


def verify_proof(
    document: Mapping[str, Any],
    *,
    public_key: bytes,
    expected_purpose: str = "assertionMethod",
    plain: bool = False,
) -> ProofVerdict:
    """Verify the eddsa-jcs-2022 proof of ``document`` against a raw Ed25519 key.

    The caller must already have checked that the key belongs to the proof's
    ``verificationMethod`` (see :func:`proof_verification_method`), and that
    method to the actor (FEP-521a ``assertionMethod``). Raises :class:`ProofError`.
    ``plain``: see :func:`proof_hashes`.
    """
    proof = _get_proof(document)
    method = proof_verification_method(document)
    _check_suite(proof, expected_purpose)
    _check_context(document, proof)
    signature = _decode_proof_value(proof)
    created = _parse_created(proof)
    options_hash, document_hash = proof_hashes(document, proof, plain=plain)
    _verify_signature(public_key, options_hash + document_hash, signature)
    return ProofVerdict(verification_method=method, created=created, purpose=expected_purpose)
