"""FlowService fixtures: the real server (tests/conftest.py) and a stub on its channel."""

from __future__ import annotations

import grpc
import pytest

from plansmith.v1 import flow_service_pb2_grpc


@pytest.fixture
def flows(channel: grpc.aio.Channel) -> flow_service_pb2_grpc.FlowServiceStub:
    return flow_service_pb2_grpc.FlowServiceStub(channel)


# The local OpenAI-compatible server and a Plansmith routed to it (tests/backends).
from tests.backends.conftest import llm, plansmith  # noqa: E402, F401
