"""One name per meaning (issue 13): no two classes share a name anywhere in the package, and
``ValidationError`` is imported from its one home."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import meshnode.errors
from meshnode.protocol.errors import ValidationError

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "meshnode"


def test_names__no_two_classes_share_a_name() -> None:
    # Given every class defined under meshnode/
    homes: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                homes[node.name].append(str(path.relative_to(PACKAGE_DIR.parent)))
    # Then each name has one home (two ValidationErrors once meant two meanings)
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}


def test_names__validation_error_has_one_import_path() -> None:
    # The service errors module does not re-export it under a second name
    assert not hasattr(meshnode.errors, "ValidationError")
    assert ValidationError.__module__ == "meshnode.protocol.errors"


def test_names__no_module_imports_validation_error_from_the_service_errors() -> None:
    offenders = [
        str(path.relative_to(PACKAGE_DIR.parent))
        for folder in ("meshnode", "tests", "scripts")
        for path in sorted((PACKAGE_DIR.parent / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module == "meshnode.errors"
        and any(alias.name == "ValidationError" for alias in node.names)
    ]
    assert offenders == []


def test_names__services_sign_only_through_services_signing() -> None:
    # Given the service and federation layers, When we look for proof creation and seeds
    signing_calls = ("create_proof", "cosign")
    offenders = []
    for folder in ("services", "federation", "web"):
        for path in sorted((PACKAGE_DIR / folder).rglob("*.py")):
            if path.name == "signing.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                called = node.func if isinstance(node, ast.Call) else None
                name = (called.id if isinstance(called, ast.Name) else
                        called.attr if isinstance(called, ast.Attribute) else "")
                if name in signing_calls:
                    offenders.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno} {name}")
    # Then only services/signing.py signs (sign_as_member, sign_as_node, cosign_as_node)
    assert offenders == []
