"""Flows: registered graphs of described nodes, the paths planned through them, and the
runs that follow those paths. The domain of `FlowService`; imports neither grpc nor
generated code (see docs/flows.md)."""
