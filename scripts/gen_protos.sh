#!/usr/bin/env bash
# Regenerates the Python code of protos/ into the client package (clients/python/src), so
# it imports as `plansmith.v1.plan_pb2`; the server imports the same modules.
#   scripts/gen_protos.sh          regenerate in place
#   scripts/gen_protos.sh --check  fail (exit 1) when regenerating would change anything
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
OUT=clients/python/src
GEN_DIR=plansmith/v1

generate() {  # $1: output root
  local out=$1 plugin_dir
  plugin_dir=$(dirname "$(command -v protoc-gen-mypy || echo "$(dirname "$PYTHON")/protoc-gen-mypy")")
  mkdir -p "$out/$GEN_DIR"
  # -I protos makes the module path plansmith/v1/..., hence `from plansmith.v1 import ...`.
  PATH="$plugin_dir:$PATH" "$PYTHON" -m grpc_tools.protoc -I protos \
    --python_out="$out" --grpc_python_out="$out" \
    --mypy_out="$out" --mypy_grpc_out="$out" \
    protos/plansmith/v1/*.proto 2>"$out/.protoc.log" || { cat "$out/.protoc.log" >&2; exit 1; }
  # mypy-protobuf reports every file it writes; keep only real messages.
  grep -v '^Writing mypy' "$out/.protoc.log" >&2 || true
  rm -f "$out/.protoc.log"
  # The same files with their comments, for server reflection: grpcurl describe shows them.
  "$PYTHON" -m grpc_tools.protoc -I protos --include_source_info \
    --descriptor_set_out="$out/$GEN_DIR/plansmith_v1.binpb" protos/plansmith/v1/*.proto
  printf '"""Generated from protos/plansmith/v1 by scripts/gen_protos.sh; do not edit."""\n' \
    >"$out/$GEN_DIR/__init__.py"
}

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  if ! diff -r -x '__pycache__' "$tmp/$GEN_DIR" "$OUT/$GEN_DIR"; then
    echo "generated code is stale: run scripts/gen_protos.sh (make gen) and commit" >&2
    exit 1
  fi
  echo "generated code matches protos/"
else
  rm -f "$OUT/$GEN_DIR"/*_pb2*.py "$OUT/$GEN_DIR"/*_pb2*.pyi "$OUT/$GEN_DIR"/*.binpb
  generate "$OUT"
  echo "generated into $OUT/$GEN_DIR"
fi
