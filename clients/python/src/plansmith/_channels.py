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
) -> grpc.aio.Channel:
    """A grpc.aio channel to `target` (TLS when `creds` is given) with `chain.aio()`."""
    if creds is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=chain.aio())
    return grpc.aio.secure_channel(target, creds, options=options, interceptors=chain.aio())


def open_sync_channel(
    target: str,
    creds: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]],
    chain: InterceptorChain,
) -> grpc.Channel:
    """A sync grpc channel to `target` (TLS when `creds` is given) with `chain.sync()`."""
    if creds is None:
        raw = grpc.insecure_channel(target, options=options)
    else:
        raw = grpc.secure_channel(target, creds, options=options)
    return grpc.intercept_channel(raw, *chain.sync())
