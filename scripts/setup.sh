#!/usr/bin/env bash
# Create .venv in the checkout and install cnnzoo with its test extra.
# A no-op when .venv is already current (pyproject.toml unchanged since the last install).
# Also installs the Fashion-MNIST Debian package, and Graphviz's `dot` (cnnzoo draw) and headless
# Chromium with its driver (the model page's browser test), where that is possible (root + apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # torch's CUDA build takes about 5.6 GB in .venv: say so up front rather than after pip's "No space left"
    free_mb=$(( $(df -Pk . | awk 'NR == 2 {print $4}') / 1024 ))
    if [ "$free_mb" -lt 7000 ] && ! compgen -G '.venv/lib/python3*/site-packages/torch' >/dev/null; then
        echo "setup: $free_mb MB free on $(df -P . | awk 'NR == 2 {print $6}'); torch and torchvision need about 6 GB in .venv" >&2
    fi
    pip=(.venv/bin/python -m pip install -q --no-cache-dir)
    "${pip[@]}" --upgrade pip
    # torch/torchvision pinned to what this machine serves from local disk (a CUDA build that runs on the CPU).
    "${pip[@]}" "torch==2.14.1" "torchvision==0.29.1" || "${pip[@]}" torch torchvision
    "${pip[@]}" -e ".[test]"
    echo "$want" > "$stamp"
fi
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }) \
      || echo "setup: could not install dataset-fashion-mnist; pass --data-dir or set CNNZOO_DATA" >&2
fi
if ! { command -v dot && command -v chromium && command -v chromedriver; } >/dev/null && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null; then
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q graphviz chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q graphviz chromium chromium-driver >/dev/null 2>&1; }) \
      || echo "setup: could not install graphviz, chromium, chromium-driver; cnnzoo draw needs graphviz's dot" >&2
elif ! command -v dot >/dev/null; then
    echo "setup: graphviz's dot is missing; cnnzoo draw needs it: apt-get install graphviz (as root)" >&2
fi
