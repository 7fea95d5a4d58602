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
  if ! .venv/bin/python -m pip install --quiet -r "$REQ"; then
    echo "could not install $REQ (see above). For requirements-memory.txt outside these build machines, the CPU" >&2
    echo "torch wheel needs PyTorch's CPU wheel index as --extra-index-url; HORIZON_TEST_WITHOUT_MEMORY_EXTRA=1" >&2
    echo "runs the tests without the extra (the memory_model test then skips, saying why)." >&2
    exit 1
  fi
  rm -f .venv/.extra-"$name"-*
  touch "$stamp"
  echo "installed $REQ in $(($(date +%s) - started)) s"
fi
