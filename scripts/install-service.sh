#!/usr/bin/env bash
# Installs pydockerd as a systemd service listening on /run/docker.sock (socket-activated),
# as root:   scripts/install-service.sh          (install, enable and start the socket)
#            scripts/install-service.sh --remove (stop, disable and remove the units)
# Runs the `pydockerd` entry point when pip installed one (scripts/install-deps.sh does),
# else $PYTHON -m compat_api from this checkout. Debian's docker.socket/docker.service, if
# present, are stopped and disabled: both cannot own /run/docker.sock.
set -euo pipefail

cd "$(dirname "$0")/.."
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
PYTHON=${PYTHON:-python3}

if [ "$(id -u)" != 0 ]; then
    echo "$0: run as root" >&2
    exit 1
fi
if [ ! -d /run/systemd/system ]; then
    echo "$0: systemd is not running on this host" >&2
    exit 1
fi

if [ "${1:-}" = "--remove" ]; then
    systemctl disable --now pydockerd.socket pydockerd.service >/dev/null 2>&1 || true
    rm -f "$UNIT_DIR/pydockerd.service" "$UNIT_DIR/pydockerd.socket"
    systemctl daemon-reload
    echo "pydockerd units removed"
    exit 0
fi

if exec_path=$(command -v pydockerd) && [ -z "${PYDOCKERD_FROM_CHECKOUT:-}" ]; then
    exec_line=$exec_path
    environment=""
else
    exec_line="$(command -v "$PYTHON") -m compat_api"
    environment="Environment=PYTHONPATH=$(pwd)"
fi
group=docker
getent group docker >/dev/null 2>&1 || group=root

for unit in docker.socket docker.service; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
done
sed -e "s|@EXEC@|$exec_line|" -e "s|@ENVIRONMENT@|$environment|" \
    scripts/systemd/pydockerd.service > "$UNIT_DIR/pydockerd.service"
sed -e "s|@GROUP@|$group|" scripts/systemd/pydockerd.socket > "$UNIT_DIR/pydockerd.socket"
systemctl daemon-reload
systemctl enable --now pydockerd.socket
systemctl enable pydockerd.service >/dev/null 2>&1
echo "pydockerd.socket listening on /run/docker.sock; pydockerd.service starts on first use"
