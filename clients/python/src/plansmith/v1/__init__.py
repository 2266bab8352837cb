"""Generated from protos/plansmith/v1 by scripts/gen_protos.sh; do not edit."""
