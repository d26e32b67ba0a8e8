#!/usr/bin/env bash
# Starts a real dockerd (Debian's docker.io) as the reference engine for the conformance suite:
#   ./scripts/ref-dockerd.sh           # start on unix:///tmp/ref.sock unless already running
#   ./scripts/ref-dockerd.sh stop      # stop the one this script started
#   CONFORMANCE_DOCKER_HOST=unix:///tmp/ref.sock python3 -m pytest -q conformance
# It uses docker0 / 172.17.0.0/16 and its own data root; the default socket stays untouched.
set -euo pipefail

SOCK=${REF_SOCK:-/tmp/ref.sock}
DATA=${REF_DATA_ROOT:-/var/lib/refdocker}
EXEC=${REF_EXEC_ROOT:-/run/refdocker}
PIDFILE=${REF_PIDFILE:-/run/refdocker.pid}
LOG=${REF_LOG:-/tmp/refdockerd.log}

ping_ok() {
    python3 - "$SOCK" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
sys.exit(0 if data.endswith(b"\r\n\r\nOK") else 1)
PY
}

if [ "${1:-start}" = stop ]; then
    if [ -f "$PIDFILE" ]; then
        kill -TERM "$(cat "$PIDFILE")"
        echo "sent SIGTERM to dockerd $(cat "$PIDFILE")"
    else
        echo "no $PIDFILE: not started by this script" >&2
    fi
    exit 0
fi

if [ -S "$SOCK" ] && ping_ok; then
    echo "reference dockerd already answering on unix://$SOCK"
    exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd missing: apt-get install docker.io" >&2; exit 1; }
setsid dockerd -H "unix://$SOCK" --data-root "$DATA" --exec-root "$EXEC" --pidfile "$PIDFILE" \
    >"$LOG" 2>&1 </dev/null &
for _ in $(seq 1 100); do
    if ping_ok; then
        echo "reference dockerd ready on unix://$SOCK (log: $LOG)"
        exit 0
    fi
    sleep 0.2
done
echo "dockerd did not answer on $SOCK within 20s; log tail:" >&2
tail -20 "$LOG" >&2
exit 1
