#!/usr/bin/env bash
# The main job on a fresh machine: install, migrate the embedded SQLite database, and run a goal
# end to end in-process on the offline scripted model. Extra arguments go to `run_goal`.
#
#   scripts/demo.sh [GOAL] [run_goal options]   the tenant-onboarding demo (runs to completion)
#   scripts/demo.sh --approval [GOAL]           the human-in-the-loop demo: the agent stops and asks a
#                                               person before it runs code (README "Try the human in
#                                               the loop"); exits 0 once it waits for you
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements.txt
.venv/bin/python manage.py migrate --verbosity 0
if [[ "${1:-}" == "--approval" ]]; then
  shift
  # The approved step runs code: run_python needs its sandbox (bubblewrap). Without it the demo still
  # runs, and the approved call answers with the reason instead of the code's output.
  bash scripts/ensure_sandbox.sh || echo "demo: run_python's sandbox cannot be built here (see above)" >&2
  goal=${1:-"Archive the stale customer accounts"}
  status=0
  .venv/bin/python manage.py run_goal "$goal" --scenario agents/scenarios/approval_demo.json || status=$?
  if [[ $status -eq 3 ]]; then  # run_goal: the task waits (here: for your decision)
    cat <<'TEXT'

The agent waits for a person. Decide in the browser:
  .venv/bin/python manage.py createsuperuser   # once: your login
  .venv/bin/python manage.py runserver         # then open http://127.0.0.1:8000/admin/ (Approvals inbox)
or at the terminal with the approve / reject commands above; then run the `drive` command above.
TEXT
    exit 0
  fi
  exit $status
fi
if [[ $# -eq 0 ]]; then
  set -- "Onboard Acme Corp as a new tenant"
fi
exec .venv/bin/python manage.py run_goal "$@"
