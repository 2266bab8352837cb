"""The shipped text-to-SQL example (examples/flows/text_to_sql.json), as tests load it."""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import json_format

from plansmith.v1 import flow_pb2
from plansmith_server.api.flow_convert import flow_from_proto
from plansmith_server.flows.model import Flow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flows" / "text_to_sql.json"


def example_json() -> dict:
    return json.loads(EXAMPLE.read_text())


def example_proto() -> flow_pb2.Flow:
    return json_format.ParseDict(example_json(), flow_pb2.Flow())


def text_to_sql() -> Flow:
    return flow_from_proto(example_proto())
