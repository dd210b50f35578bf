#!/usr/bin/env bash
# Runs every test against the locally provisioned services (`make test` runs setup first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN=.venv/bin

echo "== lint (ruff)"
"$BIN/ruff" check .
"$BIN/ruff" format --check .
echo "== types (mypy)"
"$BIN/mypy"
echo "== python tests (unit, integration, reliability, e2e)"
# pytest's exit code 5 means "no test collected": treat it as the failure it is.
"$BIN/pytest" -p no:cacheprovider "$@"
if [ -f web/package.json ] && grep -q '"test"' web/package.json; then
  echo "== web unit tests (vitest)"
  (cd web && npm test --silent)
fi
