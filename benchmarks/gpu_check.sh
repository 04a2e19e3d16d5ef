#!/usr/bin/env bash
# GPU check on a CUDA machine: every backbone in fp16 with batching (speed, peak GPU memory) and
# GPU-vs-CPU feature agreement; see benchmarks/gpu_check.py for what is measured and the tolerances.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default OUT_DIR: out/gpu_check
#
# Needs the project's .venv (bash scripts/setup.sh); installs nothing. Writes OUT_DIR/gpu_check.json
# and OUT_DIR/gpu_check.txt (the table). Exit: 0 pass, 1 a check failed, 2 no CUDA / bad options,
# 124 the 300-s limit was hit (the JSON keeps the rows measured until then).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${1:-out/gpu_check}"
PY="$ROOT/.venv/bin/python"
if [[ ! -x "$PY" ]]; then
  echo "gpu_check.sh: $PY not found; run 'bash scripts/setup.sh' in $ROOT first" >&2
  exit 2
fi
mkdir -p "$OUT_DIR"
shift $(( $# > 0 ? 1 : 0 ))
set +e
timeout 300 "$PY" "$ROOT/benchmarks/gpu_check.py" --json "$OUT_DIR/gpu_check.json" "$@" | tee "$OUT_DIR/gpu_check.txt"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -eq 124 ]]; then
  echo "gpu_check.sh: stopped at the 300-s limit; partial results in $OUT_DIR/gpu_check.json" >&2
fi
exit "$rc"
