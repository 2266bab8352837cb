"""The flows domain imports neither grpc nor generated code, nor the API or storage."""

from __future__ import annotations

import ast
from pathlib import Path

import plansmith_server.flows as flows

FORBIDDEN = (
    "grpc",
    "google.protobuf",
    "plansmith.v1",
    "plansmith_server.api",
    "plansmith_server.storage",
    "plansmith_server.backends",
)


def test_the_flows_domain_stays_a_domain():
    found = []
    for path in Path(flows.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [(path.name, n) for n in names if n.startswith(FORBIDDEN)]
    assert found == []
