"""The client's channel, opened with its interceptors: the one thing the two clients do
differently when they connect. grpc.aio takes the interceptors when the channel is made;
a sync channel is wrapped with them (`grpc.intercept_channel`). `client.py` calls
`open_aio_channel`; its generated twin `sync_client.py` calls `open_sync_channel`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from plansmith.interceptors import InterceptorChain


def open_aio_channel(
    target: str,
    creds: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]],
    chain: InterceptorChain,
    balanced: bool = False,
) -> grpc.aio.Channel:
    """A grpc.aio channel to `target` (TLS when `creds` is given) with `chain.aio()`;
    `balanced`: spread over several servers (round_robin), which the breaker learns."""
    if balanced:
        options = with_round_robin(options)
    if creds is None:
        channel = grpc.aio.insecure_channel(target, options=options, interceptors=chain.aio())
    else:
        channel = grpc.aio.secure_channel(
            target, creds, options=options, interceptors=chain.aio()
        )
    if balanced:
        chain.watch_aio_channel(channel)
    return channel


def open_sync_channel(
    target: str,
    creds: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]],
    chain: InterceptorChain,
    balanced: bool = False,
) -> grpc.Channel:
    """A sync grpc channel to `target` (TLS when `creds` is given) with `chain.sync()`;
    `balanced`: spread over several servers (round_robin), which the breaker learns."""
    if balanced:
        options = with_round_robin(options)
    if creds is None:
        raw = grpc.insecure_channel(target, options=options)
    else:
        raw = grpc.secure_channel(target, creds, options=options)
    if balanced:
        chain.watch_sync_channel(raw)
    return grpc.intercept_channel(raw, *chain.sync())


def with_round_robin(options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """`options` with gRPC's round_robin load balancing, unless they choose a policy
    (`grpc.lb_policy_name`, or a service config)."""
    given = {key for key, _ in options}
    if given & {"grpc.lb_policy_name", "grpc.service_config"}:
        return list(options)
    return [*options, ("grpc.lb_policy_name", "round_robin")]
