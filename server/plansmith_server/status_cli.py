"""`plansmith-server status --target HOST:PORT`: the status report, readable.

The report itself is `plansmith.cli.status.render`, which `plansmith status` prints too."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from google.protobuf import json_format

from plansmith.cli.status import render
from plansmith.v1 import ops_service_pb2, ops_service_pb2_grpc


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="plansmith-server status", description="Print a running server's status report."
    )
    p.add_argument("--target", default="127.0.0.1:50051", help="host:port of the server")
    p.add_argument("--window", type=int, default=300, help="seconds of history (max 3600)")
    p.add_argument("--json", action="store_true", help="print the raw report as JSON")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the server")
    args = p.parse_args(argv)
    with grpc.insecure_channel(args.target) as ch:
        stub = ops_service_pb2_grpc.OpsServiceStub(ch)
        try:
            s = stub.GetServiceStatus(
                ops_service_pb2.GetServiceStatusRequest(window_seconds=args.window),
                timeout=args.timeout,
            )
        except grpc.RpcError as e:
            print(
                f"plansmith-server status: {args.target}: {e.code().name}: {e.details()}",
                file=sys.stderr,
            )
            return 1
    print(json_format.MessageToJson(s) if args.json else render(s))
    return 0
