"""Assembles and runs the server: storage, domain, servicers, health, reflection, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from plansmith.v1 import (
    flow_service_pb2,
    ops_service_pb2,
    plan_service_pb2,
    planning_service_pb2,
)
from plansmith_server import listening, logs, loops
from plansmith_server.api import core_call_gauge, reflection
from plansmith_server.api.flow_servicer import FlowServicer
from plansmith_server.api.handlers import add_service
from plansmith_server.api.interceptors import chain
from plansmith_server.api.limits import LoadSheddingConcern
from plansmith_server.api.ops_servicer import OpsServicer
from plansmith_server.api.plan_servicer import PlanServicer
from plansmith_server.api.planning_servicer import PlanningServicer
from plansmith_server.api.watch_convert import encode_revision
from plansmith_server.backends import Router, RoutingConfig
from plansmith_server.backends.flow_paths import RouterPathModel
from plansmith_server.config import Config
from plansmith_server.domain.execution import Execution
from plansmith_server.domain.generation import PlanGenerator
from plansmith_server.domain.mutations import MutationRunner, now_us
from plansmith_server.domain.planner import EmbeddedPlanner, PlannerBackend
from plansmith_server.domain.plans import Plans
from plansmith_server.domain.retention import prune_change_log
from plansmith_server.domain.schedules import Schedules
from plansmith_server.domain.tasks import Tasks
from plansmith_server.domain.watch import PlanFeed, WatchLimits
from plansmith_server.flows.book import FlowBook
from plansmith_server.storage import dsn
from plansmith_server.storage.flows_postgres import PgFlowStore
from plansmith_server.storage.flows_sqlite import SqliteFlowStore
from plansmith_server.storage.postgres import PostgresStore
from plansmith_server.storage.sqlite import SqliteStore
from plansmith_server.telemetry import Telemetry, exporters
from plansmith_server.telemetry.exporters import Providers

log = logging.getLogger("plansmith.server")

PLAN_SERVICE = plan_service_pb2.DESCRIPTOR.services_by_name["PlanService"]
PLANNING_SERVICE = planning_service_pb2.DESCRIPTOR.services_by_name["PlanningService"]
OPS_SERVICE = ops_service_pb2.DESCRIPTOR.services_by_name["OpsService"]
FLOW_SERVICE = flow_service_pb2.DESCRIPTOR.services_by_name["FlowService"]
SERVICE_NAMES = (
    PLAN_SERVICE.full_name,
    PLANNING_SERVICE.full_name,
    OPS_SERVICE.full_name,
    FLOW_SERVICE.full_name,
)


@dataclass
class Running:
    """A started server and what it owns; `stop()` shuts it down in order."""

    config: Config
    server: grpc.aio.Server
    store: SqliteStore | PostgresStore
    health: health.aio.HealthServicer
    port: int
    plans: Plans
    tasks: Tasks
    telemetry: Telemetry
    shed: LoadSheddingConcern
    feed: PlanFeed
    providers: Providers | None = None
    router: Router | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopped: bool = False

    @property
    def address(self) -> str:
        host = self.config.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Health goes NOT_SERVING, in-flight calls get `grace` seconds, the database closes."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.config.grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        # Watches never end by themselves: end them now (UNAVAILABLE, with the revision
        # to resume from), or they would hold stop() for the whole grace.
        self.feed.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.server.stop(grace)
        if self.router is not None:
            await self.router.aclose()
        await self.store.close()
        if self.providers is not None:
            self.providers.shutdown()
        log.info("stopped")


async def _set_all(h: health.aio.HealthServicer, status: int) -> None:
    await h.set("", status)
    for name in SERVICE_NAMES:
        await h.set(name, status)


async def _probe_database(running: Running) -> None:
    """Keeps health in step with the database: NOT_SERVING while it does not answer, or
    while writes have been kept from its write lock for `health_write_lock_seconds`
    (reads alone would still answer). The database is pinged every
    `health_probe_seconds`; the write lock is looked at every half window or more often,
    so that health turns within half a window of the limit."""
    config = running.config
    window = config.health_write_lock_seconds
    tick = min(config.health_probe_seconds, window / 2)
    serving: bool | None = None
    answers = True
    next_ping = 0.0
    loop = asyncio.get_running_loop()
    while True:
        if loop.time() >= next_ping:
            next_ping = loop.time() + config.health_probe_seconds
            try:
                # asyncio.timeout, not wait_for: wait_for (3.11) can swallow a cancellation
                # that lands as the ping finishes, and then stop() waits for this forever.
                async with asyncio.timeout(max(1.0, config.health_probe_seconds)):
                    await running.store.ping()
                answers = True
            except Exception as exc:  # any failure of the probe means "not serving"
                if answers:
                    log.error("database probe failed: %s", exc)
                answers = False
        try:
            blocked = await running.store.write_lock_blocked_for()
        except Exception:  # the lock cannot be looked at: the ping says why
            blocked = 0.0
        locked_out = blocked > window
        if locked_out and serving is not False:
            log.error(
                "writes have been kept from the database's write lock for %.1fs "
                "(another process holds it)",
                blocked,
            )
        ok = answers and not locked_out
        if ok != serving:
            serving = ok
            await _set_all(
                running.health,
                health_pb2.HealthCheckResponse.SERVING
                if ok
                else health_pb2.HealthCheckResponse.NOT_SERVING,
            )
        await asyncio.sleep(tick)


async def _purge_idempotency(running: Running) -> None:
    """Forgets request ids past the retention period, hourly."""
    retention_us = int(running.config.idempotency_retention_hours * 3600 * 1e6)
    while True:
        try:
            purged = await running.store.purge_idempotency(now_us() - retention_us)
            if purged:
                log.info("forgot %d request ids older than the retention period", purged)
        except Exception as exc:
            log.warning("purging request ids failed: %s", exc)
        await asyncio.sleep(3600)


async def _sweep_heartbeats(execution: Execution) -> None:
    """Makes agents whose heartbeats stopped unavailable, four times per timeout."""
    tick = max(execution.heartbeat_timeout / 4e6, 0.05)
    while True:
        await asyncio.sleep(tick)
        try:
            await execution.sweep_heartbeats()
        except Exception as exc:
            log.warning("checking agents' heartbeats failed: %s", exc)


async def prune_changes_once(running: Running) -> int:
    """One pass of change-log retention (see `domain/retention.py`); rows deleted."""
    config = running.config
    return await prune_change_log(
        running.store,
        older_than=now_us() - int(config.change_retention_hours * 3600 * 1e6),
        keep_revisions=config.change_retention_revisions,
    )


async def _prune_changes(running: Running, first_after: float = 10.0) -> None:
    """Change-log retention, hourly; the first pass a little after start, in the
    background: a long log is pruned in small batches between other writes."""
    await asyncio.sleep(first_after)
    while True:
        try:
            pruned = await prune_changes_once(running)
            if pruned:
                log.info("pruned %d change-log entries past retention", pruned)
        except Exception as exc:
            log.warning("pruning the change log failed: %s", exc)
        await asyncio.sleep(3600)


async def start(
    config: Config,
    *,
    telemetry: Telemetry | None = None,
    planner: PlannerBackend | None = None,
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    routing: RoutingConfig | None = None,
) -> Running:
    """Opens the database and starts serving; returns once the port is bound (while it is
    in use, after waiting up to the grace period for it: see `listening`).

    `telemetry` replaces the one built from the configuration (tests pass in-memory
    providers); `planner` replaces the embedded planner; `extra_interceptors` run inside
    the standard chain (tests inject faults); `routing` declares model backends and the
    rules that choose them (`backends.load()` reads it from the environment); without it
    every request goes to the embedded planner.
    """
    logs.quiet_grpc_noise()
    providers = None
    if telemetry is None:
        providers = exporters.build(config.traces, config.metrics, config.prometheus_address)
        telemetry = Telemetry.from_providers(providers.tracer_provider, providers.meter_provider)
        telemetry.tracing_enabled = providers.tracer_provider is not None
    store = open_store(config, telemetry)
    router = Router(planner or EmbeddedPlanner(), routing)
    try:
        await store.open()
        plans = Plans(MutationRunner(store), max_tasks_per_plan=config.max_tasks_per_plan)
        tasks = Tasks(
            plans,
            page_cache_tasks=config.page_cache_tasks,
            lookups_remembered=lambda: store.remembers_lookups,
        )
        shed = LoadSheddingConcern(
            config.max_in_flight, config.max_streams, config.retry_after_ms / 1000
        )
        before = core_call_gauge.server_ids()
        server = grpc.aio.server(
            interceptors=[
                chain(
                    telemetry,
                    tracing=telemetry.tracing_enabled,
                    innermost=[shed],
                    log_every_call=config.access_log == "all",
                ),
                *extra_interceptors,
            ],
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", max(config.max_message_bytes, 64 * 1024 * 1024)),
                ("grpc.enable_channelz", 1),  # the core call gauge reads core's call counts
                ("grpc.max_concurrent_streams", config.max_streams_per_connection),
                # Count streams as HTTP/2 does: with core's default "overload protection"
                # a stream still being freed counts too, and a client that keeps to the
                # limit gets REFUSED_STREAM (UNAVAILABLE) now and then.
                ("grpc.http.overload_protection", 0),
                listening.EXCLUSIVE,
            ],
        )
        shed.gauge = core_call_gauge.CoreCallGauge.find(
            before, busy_from=config.max_in_flight // 2
        )
        execution = Execution(
            plans,
            tasks,
            heartbeat_timeout_s=config.heartbeat_timeout_seconds,
            reassign_time_limit_s=config.reassign_time_limit_seconds,
        )
        feed = PlanFeed(
            store,
            encode_revision,
            WatchLimits(
                max_watches=config.max_watches,
                heartbeat_seconds=config.watch_heartbeat_seconds,
                max_lag_seconds=config.watch_max_lag_seconds,
            ),
        )
        plan_servicer = PlanServicer(plans, tasks, execution, feed)
        add_service(server, plan_servicer, PLAN_SERVICE)
        add_service(
            server,
            PlanningServicer(PlanGenerator(plans, router, telemetry), Schedules(plans, telemetry)),
            PLANNING_SERVICE,
        )
        flow_book = FlowBook(
            PgFlowStore(store) if isinstance(store, PostgresStore) else SqliteFlowStore(store),
            MutationRunner(store),
            model=RouterPathModel(router),
            retained_runs=config.flow_runs_retained,
        )
        add_service(server, FlowServicer(flow_book), FLOW_SERVICE)
        # Each layer reports the caches it keeps (none by another's attribute names).
        caches = {**store.caches(), **tasks.caches(), **plan_servicer.caches()}
        add_service(server, OpsServicer(telemetry, store, caches, router.status), OPS_SERVICE)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable(server, (*SERVICE_NAMES, health.SERVICE_NAME))
        port = await listening.bind(server, config.listen, config.grace_seconds)
        await server.start()
    except BaseException:
        await router.aclose()
        await store.close()
        if providers is not None:
            providers.shutdown()
        raise
    running = Running(
        config,
        server,
        store,
        health_servicer,
        port,
        plans,
        tasks,
        telemetry,
        shed,
        feed,
        providers,
        router,
    )
    # PostgreSQL may not be reachable yet: the server is up, NOT_SERVING, and the store
    # keeps trying (the probe turns health SERVING once it answers).
    await _set_all(
        health_servicer,
        health_pb2.HealthCheckResponse.SERVING
        if getattr(store, "ready", True)
        else health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    running._tasks.append(asyncio.create_task(_probe_database(running)))
    running._tasks.append(asyncio.create_task(_purge_idempotency(running)))
    running._tasks.append(asyncio.create_task(_sweep_heartbeats(execution)))
    running._tasks.append(asyncio.create_task(_prune_changes(running)))
    if routing is not None:
        log.info("planner backends: %s (routing from %s)", ", ".join(router.known), routing.source)
    log.info(
        "serving on %s (database %s, event loop %s)",
        running.address,
        store.path,  # a PostgreSQL URL without its password
        loops.running_name(),
    )
    return running


def open_store(config: Config, telemetry: Telemetry) -> SqliteStore | PostgresStore:
    """The store `--db` names: a PostgreSQL URL, else an SQLite file (or `:memory:`)."""
    if dsn.is_postgres(config.db_path):
        return PostgresStore(
            dsn.parse(config.db_path),
            pool_size=config.pg_pool_size,
            pool_timeout_ms=config.pg_pool_timeout_ms,
            statement_timeout_ms=config.pg_statement_timeout_ms,
            lookups_size=config.pg_lookups_size,
            telemetry=telemetry,
        )
    return SqliteStore(config.db_path, synchronous=config.sqlite_synchronous, telemetry=telemetry)


def freeze_startup_objects() -> None:
    """Takes what the process built to start (modules, protobuf descriptors, the planning
    library: tens of thousands of objects that live as long as it does) out of the garbage
    collector's sight. A full collection walked them every few seconds under write load,
    pausing every call in flight (the pauses and the p99 they cost are in
    docs/performance.md). For the process entry point only: in a host that embeds `start` (the
    tests), what to freeze is the host's decision."""
    gc.collect()  # garbage made while starting is freed, not kept forever
    gc.freeze()


async def serve(config: Config, routing: RoutingConfig | None = None) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully."""
    running = await start(config, routing=routing)
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight calls (grace %.1fs)", config.grace_seconds)
    await running.stop()
