#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's chromium) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements-test.txt
if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi
scripts/cjk-font.sh  # Chinese and Japanese glyphs in PNG exports (apt-get only when missing)
# Lint first (configuration in pyproject.toml): a style or unused-name error fails the run before the tests.
.venv/bin/ruff check .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# OpenMP threads spin while waiting by default: on a shared or small machine that costs 10-40x.
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest "$@"
