"""``parse_acct``: handles typed by people (``name@host[:port]``)."""

from __future__ import annotations

import pytest

from meshnode.protocol.activities import parse_acct
from meshnode.protocol.errors import ValidationError


def test_parse_acct__name_host_and_port() -> None:
    assert parse_acct("acct:Bob@Example.org:8443") == ("bob", "example.org:8443")
    assert parse_acct("@bob@127.0.0.1:9000") == ("bob", "127.0.0.1:9000")


@pytest.mark.parametrize("text", ["bob@bad host", "bob@:99", "b ob@host", "bob@host\n", "bob@",
                                  "bob@host/x", "nobody"])
def test_parse_acct__refuses_spaces_and_missing_host(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_acct(text)
