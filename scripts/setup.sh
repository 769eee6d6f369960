#!/usr/bin/env bash
# Create .venv in the checkout and install cnnzoo with its test extra.
# A no-op when .venv is already current (pyproject.toml unchanged since the last install).
# Also installs the Fashion-MNIST Debian package where that is possible (root + apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # torch/torchvision pinned to what this machine serves from local disk (a CUDA build that runs on the CPU).
    .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" || .venv/bin/python -m pip install -q torch torchvision
    .venv/bin/python -m pip install -q -e ".[test]"
    echo "$want" > "$stamp"
fi
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }) \
      || echo "setup: could not install dataset-fashion-mnist; pass --data-dir or set CNNZOO_DATA" >&2
fi
