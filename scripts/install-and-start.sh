#!/usr/bin/env bash
# Installs pydockerd (scripts/install-deps.sh) and runs it in the foreground, as root.
#   sudo ./scripts/install-and-start.sh              # serves unix:///var/run/docker.sock
#   sudo ./scripts/install-and-start.sh -H unix:///tmp/p.sock --data-root /tmp/p/data
# Extra arguments go to pydockerd (dockerd's flag names). Stop it with Ctrl-C or SIGTERM.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
./scripts/install-deps.sh
echo "=== starting pydockerd $*"
exec "$PYTHON" -m compat_api "$@"
