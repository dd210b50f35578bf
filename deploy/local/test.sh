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
if [ -d sdk/etp_client ]; then "$BIN/mypy" sdk/etp_client; fi
if [ ! -x /usr/bin/chromium ]; then
  # tests/e2e drive Debian's Chromium (never a downloaded browser); they skip without it,
  # except in CI, where they must run.
  echo "== chromium for the browser tests (tests/e2e)"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  if ! { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; then
    if [ -n "${CI:-}" ]; then echo "test: cannot install chromium" >&2; exit 1; fi
    echo "    could not install chromium; the browser tests will be skipped"
  fi
fi
echo "== python tests (unit, integration, reliability, e2e)"
# pytest's exit code 5 means "no test collected": treat it as the failure it is.
"$BIN/pytest" -p no:cacheprovider "$@"
if [ -f web/package.json ] && grep -q '"test"' web/package.json; then
  echo "== web unit tests (vitest)"
  (cd web && npm test --silent)
fi
