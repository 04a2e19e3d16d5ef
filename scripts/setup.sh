#!/usr/bin/env bash
# Set up highlighter on a fresh Debian/Ubuntu machine (idempotent).
#   bash scripts/setup.sh          system ffmpeg + .venv with pinned deps + editable install
#   bash scripts/setup.sh --test   the same, plus what the test suite needs (chromium)
# Python deps are pinned in requirements/ci.txt (torch 2.14.1 + torchvision 0.29.1 from PyPI:
# the CUDA builds, which also run on CPU; the local CPU-only torch 2.13.0 wheel has no
# matching torchvision). Real users may `pip install highlighter` with any torch in range.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# 1. System packages: ffmpeg/ffprobe (cutting, probing, test media); chromium for the report test.
need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
if [ "$want_test" = 1 ]; then command -v chromium >/dev/null 2>&1 || need+=(chromium); fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: please install ${need[*]} (e.g. 'sudo apt-get install ${need[*]}') and run again" >&2
    exit 1
  fi
fi

# 2. Python environment with pinned dependencies.
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.highlighter-reqs
if ! cmp -s requirements/ci.txt "$stamp" 2>/dev/null; then
  echo "setup: installing pinned Python packages (first run downloads torch, ~1-2 min)" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements/ci.txt 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c "import highlighter, torch, torchvision, timm, decord, av" \
    || { echo "setup: Python install failed (see messages above)" >&2; exit 1; }
  cp requirements/ci.txt "$stamp"
fi

# 3. The bundled example (generated with ffmpeg lavfi; ours to license).
bash examples/make_demo.sh examples/demo.mp4 >/dev/null
echo "setup: ok (.venv ready; example at examples/demo.mp4)" >&2
