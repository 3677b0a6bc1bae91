"""Typed errors raised by the pure protocol layer.

The web layer maps each class to one HTTP status in one place
(``meshnode/web/errors.py``); nothing here knows about HTTP.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class for every error the protocol layer raises."""

    code = "protocol_error"


class MalformedJSONError(ProtocolError):
    """The bytes are not a JSON document of the expected shape."""

    code = "malformed_json"


class JSONTooDeepError(MalformedJSONError):
    """The JSON document nests deeper than the configured cap."""

    code = "json_too_deep"


class ValidationError(ProtocolError):
    """A document or input failed validation; ``fields`` maps field name to message."""

    code = "validation_failed"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, str] = dict(fields or {})


class KeyFormatError(ProtocolError):
    """A key (PEM, Multikey, multibase) could not be decoded."""

    code = "bad_key"


class SignatureError(ProtocolError):
    """An HTTP signature or object proof is missing, malformed or does not verify."""

    code = "bad_signature"


class ProofError(SignatureError):
    """An FEP-8b32 / eddsa-jcs-2022 object proof does not verify."""

    code = "bad_proof"


class DigestMismatchError(SignatureError):
    """The body does not match its ``Digest`` / ``Content-Digest`` header."""

    code = "digest_mismatch"


class ClockSkewError(SignatureError):
    """The signature's ``Date``/``created`` lies outside the accepted time window."""

    code = "clock_skew"


class SignatureExpiredError(SignatureError):
    """The signature's ``expires`` parameter lies in the past."""

    code = "signature_expired"
