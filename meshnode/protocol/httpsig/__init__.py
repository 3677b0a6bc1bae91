"""HTTP signatures: RFC 9421 and draft-cavage-http-signatures-12, sign and verify.

Verification is split in two so the caller can fetch the key in between
(I/O lives outside this package)::

    parsed = parse_signature(method, url, headers)   # pure, cheap
    key = await fetch_key(parsed.key_id)              # the caller's I/O
    verdict = verify_parsed(parsed, key, now=now, body=body)

* RFC 9421: https://www.rfc-editor.org/rfc/rfc9421
* draft-cavage-12: https://datatracker.ietf.org/doc/html/draft-cavage-http-signatures-12
* RFC 9530 (Content-Digest): https://www.rfc-editor.org/rfc/rfc9530
* RFC 3230 (Digest), as used by Mastodon: https://www.rfc-editor.org/rfc/rfc3230

Modules: ``common`` (types, results, header lines), ``digests``, ``keys``, ``rfc9421``,
``cavage``, ``verify``. This package re-exports the public API below.
"""

from meshnode.protocol.httpsig.cavage import cavage_signing_string, parse_cavage, sign_cavage
from meshnode.protocol.httpsig.common import (
    DEFAULT_MAX_SKEW,
    Headers,
    ParsedSignature,
    SignatureVerdict,
    SigningKey,
    VerifyingKey,
)
from meshnode.protocol.httpsig.digests import (
    check_body_digest,
    content_digest_header,
    sha256_digest_header,
)
from meshnode.protocol.httpsig.keys import load_private_pem, load_public_pem
from meshnode.protocol.httpsig.rfc9421 import parse_rfc9421, rfc9421_signature_base, sign_rfc9421
from meshnode.protocol.httpsig.verify import (
    check_replay_window,
    parse_http_date,
    parse_signature,
    verify_parsed,
)

__all__ = [
    "DEFAULT_MAX_SKEW",
    "Headers",
    "ParsedSignature",
    "SignatureVerdict",
    "SigningKey",
    "VerifyingKey",
    "cavage_signing_string",
    "check_body_digest",
    "check_replay_window",
    "content_digest_header",
    "load_private_pem",
    "load_public_pem",
    "parse_cavage",
    "parse_http_date",
    "parse_rfc9421",
    "parse_signature",
    "rfc9421_signature_base",
    "sha256_digest_header",
    "sign_cavage",
    "sign_rfc9421",
    "verify_parsed",
]
