"""eddsa-jcs-2022 / FEP-8b32 proofs: vectors, round trips and mutate-then-fail."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from meshnode.protocol.canonical import canonicalize, compact_json
from meshnode.protocol.errors import KeyFormatError, ProofError
from meshnode.protocol.multikey import b58encode, ed25519_secret_from_multibase
from meshnode.protocol.proofs import (
    ProofVerdict,
    create_proof,
    format_created,
    proof_hashes,
    proof_verification_method,
    verify_proof,
)
from meshnode.protocol.vocab import KNOWN_CONTEXTS, LISTING_CONTEXT

SEED = bytes(range(32))
PUBLIC = bytes(SigningKey(SEED).verify_key)
VM = "https://node.example/users/alice#ed25519-key"
CREATED = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def _signed_note() -> dict[str, Any]:
    note = {
        "@context": ["https://www.w3.org/ns/activitystreams"],
        "id": "https://node.example/objects/1",
        "type": "Note",
        "content": "Fahrrad zu verschenken €",
        "price": 1.5,
    }
    return create_proof(note, seed=SEED, verification_method=VM, created=CREATED)


def _vector_seed(vector: dict[str, Any]) -> bytes:
    secret = vector.get("secretKeyMultibase") or vector["key"]["secretKeyMultibase"]
    return ed25519_secret_from_multibase(secret)


def _vector_created(vector: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(vector["proof_options"]["created"])


# ------------------------------------------------------------------ format_created


def test_format_created__whole_seconds_z() -> None:
    when = datetime(2026, 11, 26, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert format_created(when) == "2026-11-26T10:00:00Z"


# ------------------------------------------------------------------ vectors


def test_proof_hashes__reproduce_vc_di_eddsa_vector(jcs_vector: dict[str, Any]) -> None:
    options_hash, document_hash = proof_hashes(
        jcs_vector["unsecured_document"], jcs_vector["proof_options"]
    )
    assert options_hash.hex() == jcs_vector["proof_options_hash_hex"]
    assert document_hash.hex() == jcs_vector["document_hash_hex"]


def test_proof_hashes__context_taken_from_document(jcs_vector: dict[str, Any]) -> None:
    # Given proof options without @context, When hashed, Then the document's is used.
    options = {k: v for k, v in jcs_vector["proof_options"].items() if k != "@context"}
    options_hash, _ = proof_hashes(jcs_vector["unsecured_document"], options)
    assert options_hash.hex() == jcs_vector["proof_options_hash_hex"]


def test_create_proof__reproduces_vc_di_eddsa_vector(jcs_vector: dict[str, Any]) -> None:
    options = jcs_vector["proof_options"]
    secured = create_proof(
        jcs_vector["unsecured_document"],
        seed=_vector_seed(jcs_vector),
        verification_method=options["verificationMethod"],
        created=_vector_created(jcs_vector),
    )
    proof_value = secured["proof"]["proofValue"]
    assert proof_value == jcs_vector["proofValue"]
    assert b58encode(bytes.fromhex(jcs_vector["signature_hex"])) == proof_value[1:]


def test_create_proof__reproduces_fep_8b32_vector(fep_vector: dict[str, Any]) -> None:
    options = fep_vector["proof_options"]
    secured = create_proof(
        fep_vector["unsecured_document"],
        seed=_vector_seed(fep_vector),
        verification_method=options["verificationMethod"],
        created=_vector_created(fep_vector),
    )
    assert secured["proof"] == {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "verificationMethod": options["verificationMethod"],
        "proofPurpose": "assertionMethod",
        "created": "2023-02-24T23:36:38Z",
        "proofValue": fep_vector["proofValue"],
    }


def _secured_vector(vector: dict[str, Any], *, with_context: bool) -> dict[str, Any]:
    proof = dict(vector["proof_options"], proofValue=vector["proofValue"])
    if not with_context:
        proof.pop("@context")
    return dict(vector["unsecured_document"], proof=proof)


@pytest.mark.parametrize("with_context", [True, False])
@pytest.mark.parametrize("name", ["jcs_vector", "fep_vector"])
def test_verify_proof__accepts_vectors(
    name: str, with_context: bool, request: pytest.FixtureRequest
) -> None:
    vector = request.getfixturevalue(name)
    public = bytes(SigningKey(_vector_seed(vector)).verify_key)
    verdict = verify_proof(_secured_vector(vector, with_context=with_context), public_key=public)
    assert verdict == ProofVerdict(
        verification_method=vector["proof_options"]["verificationMethod"],
        created=datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC),
        purpose="assertionMethod",
    )


# ------------------------------------------------------------------ round trip


def test_create_proof__returns_new_dict_without_touching_input() -> None:
    note = {"id": "x", "type": "Note"}
    secured = create_proof(note, seed=SEED, verification_method=VM, created=CREATED)
    assert "proof" not in note
    assert secured["proof"]["created"] == "2026-11-26T10:00:00Z"
    assert "id" not in secured["proof"]


def test_verify_proof__round_trip() -> None:
    verdict = verify_proof(_signed_note(), public_key=PUBLIC)
    assert verdict.verification_method == VM
    assert verdict.created == CREATED


def test_verify_proof__ignores_legacy_ld_signature() -> None:
    secured = _signed_note()
    secured["signature"] = {"type": "RsaSignature2017", "signatureValue": "abc"}
    assert verify_proof(secured, public_key=PUBLIC).purpose == "assertionMethod"


def test_proof_verification_method__returns_method() -> None:
    assert proof_verification_method(_signed_note()) == VM


def test_create_proof__short_seed_rejected() -> None:
    with pytest.raises(KeyFormatError):
        create_proof({}, seed=b"\x00" * 31, verification_method=VM, created=CREATED)


# ------------------------------------------------------------------ mutate then fail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "https://evil.example/1"),
        ("content", "Fahrrad"),
        ("price", 1.50001),
        ("type", "Article"),
        ("@context", ["https://www.w3.org/ns/activitystreams", "x"]),
        ("extra", True),
    ],
)
def test_verify_proof__document_mutation_fails(field: str, value: Any) -> None:
    secured = _signed_note()
    secured[field] = value
    with pytest.raises(ProofError):
        verify_proof(secured, public_key=PUBLIC)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("verificationMethod", "https://evil.example/k", "does not verify"),
        ("created", "2026-11-26T10:00:01Z", "does not verify"),
        ("type", "Ed25519Signature2020", "proof type"),
        ("cryptosuite", "eddsa-rdfc-2022", "cryptosuite"),
        ("proofPurpose", "authentication", "proofPurpose"),
        ("proofValue", "uAAAA", "base58btc"),
        ("proofValue", "z0OIl", "base58btc"),
        ("proofValue", "z2222", "64-byte"),
        ("created", "yesterday", "dateTime"),
        ("extra", "x", "does not verify"),
    ],
)
def test_verify_proof__proof_mutation_fails(field: str, value: str, message: str) -> None:
    secured = _signed_note()
    secured["proof"][field] = value
    with pytest.raises(ProofError, match=message):
        verify_proof(secured, public_key=PUBLIC)


def test_verify_proof__flipped_signature_bit_fails(jcs_vector: dict[str, Any]) -> None:
    secured = _secured_vector(jcs_vector, with_context=False)
    signature = bytearray.fromhex(jcs_vector["signature_hex"])
    signature[10] ^= 0x01
    secured["proof"]["proofValue"] = "z" + b58encode(bytes(signature))
    public = bytes.fromhex(jcs_vector["key"]["public_hex"])
    with pytest.raises(ProofError, match="does not verify"):
        verify_proof(secured, public_key=public)


def test_verify_proof__wrong_key_fails() -> None:
    other = bytes(SigningKey(b"\x07" * 32).verify_key)
    with pytest.raises(ProofError, match="does not verify"):
        verify_proof(_signed_note(), public_key=other)


def test_verify_proof__malformed_key_fails() -> None:
    with pytest.raises(ProofError, match="public key"):
        verify_proof(_signed_note(), public_key=b"\x01" * 5)


def test_verify_proof__missing_proof_fails() -> None:
    with pytest.raises(ProofError, match="no proof"):
        verify_proof({"id": "x"}, public_key=PUBLIC)


def test_verify_proof__proof_list_rejected() -> None:
    secured = _signed_note()
    secured["proof"] = [secured["proof"]]
    with pytest.raises(ProofError, match="single"):
        verify_proof(secured, public_key=PUBLIC)


def test_verify_proof__wrong_expected_purpose_fails() -> None:
    with pytest.raises(ProofError, match="proofPurpose"):
        verify_proof(_signed_note(), public_key=PUBLIC, expected_purpose="authentication")


def test_verify_proof__mismatched_proof_context_fails() -> None:
    secured = _signed_note()
    secured["proof"]["@context"] = ["https://other.example/ctx"]
    with pytest.raises(ProofError, match="@context"):
        verify_proof(secured, public_key=PUBLIC)


# ------------------------------------------------------------------ properties

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
)
_json = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_documents = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in ("proof", "signature")),
    _json,
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(document=_documents, seed=st.binary(min_size=32, max_size=32), data=st.data())
def test_proof__round_trip_and_any_mutation_fails(
    document: dict[str, Any], seed: bytes, data: st.DataObject
) -> None:
    public = bytes(SigningKey(seed).verify_key)
    secured = create_proof(document, seed=seed, verification_method=VM, created=CREATED)
    assert verify_proof(secured, public_key=public).verification_method == VM

    # When one top-level field is replaced by a different JSON value, verification fails.
    mutated = copy.deepcopy(secured)
    key = data.draw(st.sampled_from(sorted(document)))
    # JCS equality is what counts: 1 and 1.0, 0 and -0.0 canonicalise identically.
    original = canonicalize(document[key])
    replacement = data.draw(_json.filter(lambda v: canonicalize(v) != original))
    mutated[key] = replacement
    with pytest.raises(ProofError):
        verify_proof(mutated, public_key=public)


# ------------------------------------------------------------------ plain (issue 17)

_members = st.recursive(
    st.none() | st.booleans() | st.text(max_size=8)
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([45.764, 1e-4, 1e16, 1.0, -0.0]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300)
@given(members=st.dictionaries(st.text(max_size=6), _members, max_size=5),
       context=st.sampled_from([LISTING_CONTEXT, ["https://www.w3.org/ns/activitystreams"],
                                [{"a": 1.0}], None]))
def test_proof_hashes__plain_gives_the_walked_hashes(members: dict[str, Any],
                                                     context: object) -> None:
    # Given a signed document, our listings' context or another, any members
    document = {**members, **({"@context": context} if context is not None else {})}
    try:
        signed = create_proof(document, seed=SEED, verification_method=VM, created=CREATED)
    except ProofError:
        return  # JCS cannot encode it: nothing to compare
    # When compact_json accepts it (what verify_listing_object checks before passing plain)
    if compact_json(signed, KNOWN_CONTEXTS) is None:
        return
    # Then its hashes without the second walk are the walked ones, and the proof verifies
    assert proof_hashes(signed, signed["proof"], plain=True) == proof_hashes(
        signed, signed["proof"])
    verify_proof(signed, public_key=PUBLIC, plain=True)


def test_verify_proof__plain_still_refuses_a_changed_document() -> None:
    note = _signed_note()
    forged = {**note, "content": "Fahrrad zu verkaufen"}
    assert compact_json(forged, KNOWN_CONTEXTS) is not None
    with pytest.raises(ProofError):
        verify_proof(forged, public_key=PUBLIC, plain=True)
