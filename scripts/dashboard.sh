#!/usr/bin/env bash
# Install what the dashboard needs and start it on the bundled models (http://localhost:8501).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# OpenMP threads spin while waiting by default: on a shared or small machine that costs 10-40x.
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/streamlit run dashboard.py "$@"
