#!/usr/bin/env bash
# The main job on a fresh machine: install, migrate the embedded SQLite database, and run a goal
# end to end in-process on the offline scripted model. Extra arguments go to `run_goal`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements.txt
.venv/bin/python manage.py migrate --verbosity 0
if [[ $# -eq 0 ]]; then
  set -- "Onboard Acme Corp as a new tenant"
fi
exec .venv/bin/python manage.py run_goal "$@"
