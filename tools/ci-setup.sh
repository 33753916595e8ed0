#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh machine. Idempotent: on a machine
# that already has everything it only checks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ -f "$here/setup-postgres.sh" ]; then
    bash "$here/setup-postgres.sh"
fi
