#!/usr/bin/env bash
# The whole test suite: install, make sure PostgreSQL and Redis run, lint, type-check, then pytest
# on PostgreSQL + Redis (with the store conformance suite on SQLite and in memory as well).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements-dev.txt
# The memory extra (CPU torch and the local embedding model; about 65 s and 1.5 GB, once) so that the
# memory_model tests run. HORIZON_TEST_WITHOUT_MEMORY_EXTRA=1 leaves it out: those tests then skip, saying why.
if [[ -z "${HORIZON_TEST_WITHOUT_MEMORY_EXTRA:-}" ]]; then
  bash scripts/install_extra.sh requirements-memory.txt
fi
bash scripts/services.sh
bash scripts/ensure_browser.sh
# bubblewrap for run_python's sandbox, and (as root) the unprivileged user tests/security also runs as.
bash scripts/ensure_sandbox.sh --worker-user
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export CELERY_BROKER_URL=${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
export HORIZON_TEST_SQLITE_ALIAS=1
export HORIZON_VAR_DIR=${HORIZON_VAR_DIR:-$PWD/var/test}
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
