"""Binding the server's port, and only if nobody else holds it.

gRPC core sets SO_REUSEPORT on server sockets by default: a second server on a port
another one holds binds anyway, says it is serving and takes part of the connections
(the kernel spreads them over both). Servers here bind with `grpc.so_reuseport` off, so
the second bind fails. A server restarted while the one before it still drains waits for
the port, up to its own grace period, then gives up with a message that names the port
and how to choose another.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time

import grpc

log = logging.getLogger("plansmith.server")

EXCLUSIVE = ("grpc.so_reuseport", 0)
"""The server option that makes a bind to a port in use fail."""

_FIRST_WAIT = 0.05
_LONGEST_WAIT = 1.0


class PortInUse(OSError):
    """The port stayed taken for as long as the server was willing to wait."""


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a `host:port` / `[v6]:port` address; None for other forms (unix:)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or host.startswith(("unix", "vsock")):
        return None
    return host.strip("[]"), int(port)


def _bind_error(address: str) -> int | None:
    """Why a plain socket cannot bind the `host:port` `address`: EADDRINUSE if any of its
    addresses is in use (`localhost`: 127.0.0.1 and ::1), else None if one can be bound,
    else the first error. SO_REUSEPORT stays off here too, so a port any server holds
    shows as in use."""
    hp = _host_port(address)
    assert hp is not None
    host, port = hp
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror:
        return errno.EADDRNOTAVAIL
    errors: list[int] = []
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC core does
            try:
                s.bind(sockaddr)
            except OSError as exc:
                errors.append(exc.errno or errno.EADDRNOTAVAIL)
    if errno.EADDRINUSE in errors:
        return errno.EADDRINUSE
    if len(errors) < len(infos):
        return None
    return errors[0] if errors else None


def _in_use_message(address: str, waited: float) -> str:
    hp = _host_port(address)
    port = f"port {hp[1]}" if hp else address
    return (
        f"cannot listen on {address}: {port} is in use (another server?) and did not come "
        f"free within {waited:.1f}s. Choose another address with --listen HOST:PORT or "
        f"PLANSMITH_LISTEN=HOST:PORT (e.g. PLANSMITH_LISTEN=127.0.0.1:50052 make run), or "
        f"stop the process that holds it."
    )


async def bind(server: grpc.aio.Server, address: str, patience: float) -> int:
    """Adds the insecure port `address` to `server` (built with `EXCLUSIVE`) and returns
    the port bound. While the port is in use it tries again, backing off, for up to
    `patience` seconds; any other failure, or a port still in use then, raises OSError.

    A plain socket tries the address first: gRPC core logs an error line for every bind
    that fails, and a server waiting for its port would print one per attempt."""
    plain = _host_port(address) is not None
    deadline = time.monotonic() + max(0.0, patience)
    wait = _FIRST_WAIT
    warned = False
    while True:
        why = _bind_error(address) if plain else None
        if why is None:
            try:
                return server.add_insecure_port(address)
            except RuntimeError as exc:
                if not plain:
                    raise OSError(f"cannot listen on {address}: {exc}") from exc
                # Taken between the two binds, or a failure only gRPC sees.
                why = _bind_error(address) or errno.EADDRINUSE
        if why != errno.EADDRINUSE:
            raise OSError(f"cannot listen on {address}: {os.strerror(why)}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise PortInUse(_in_use_message(address, patience))
        if not warned:
            warned = True
            log.warning(
                "%s is in use; trying again for up to %.1fs (the server before this one "
                "may still be stopping)",
                address,
                patience,
            )
        await asyncio.sleep(min(wait, left))
        wait = min(wait * 2, _LONGEST_WAIT)
