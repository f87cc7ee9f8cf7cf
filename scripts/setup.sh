#!/usr/bin/env bash
# Create .venv inside the repo and install the pinned requirements (registry only, no hub downloads).
# Usage: scripts/setup.sh [requirements file]   (default: requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
reqs="${1:-requirements.txt}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$reqs"
.venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
