"""Observability: traces, metrics and the in-process call statistics of the status report."""

from plansmith_server.telemetry.instruments import Telemetry

__all__ = ["Telemetry"]
