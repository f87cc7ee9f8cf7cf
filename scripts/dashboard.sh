#!/usr/bin/env bash
# Install what the dashboard needs and start it on the bundled models (http://localhost:8501).
# The install is skipped when the requirement files are unchanged since the last one (a hash stamp in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements-dashboard.sha256
wanted="$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  scripts/setup.sh requirements.txt
  echo "$wanted" > "$stamp"
fi
scripts/cjk-font.sh || echo "No CJK font could be installed: Chinese and Japanese show as boxes in PNG downloads." >&2
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# OpenMP threads spin while waiting by default: on a shared or small machine that costs 10-40x.
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/streamlit run dashboard.py "$@"
