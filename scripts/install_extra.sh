#!/usr/bin/env bash
# Install an optional requirements file (an "extra") into .venv once; reinstall when the file changes.
# Usage: bash scripts/install_extra.sh requirements-memory.txt   (after scripts/bootstrap.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=$1
name=$(basename "$REQ" .txt)
stamp=".venv/.extra-$name-$(sha256sum "$REQ" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  started=$(date +%s)
  .venv/bin/python -m pip install --quiet -r "$REQ"
  rm -f .venv/.extra-"$name"-*
  touch "$stamp"
  echo "installed $REQ in $(($(date +%s) - started)) s"
fi
