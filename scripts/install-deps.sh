#!/usr/bin/env bash
# Installs everything pydockerd and its test suite need on Debian/Ubuntu, as root:
# system packages (apt) and the Python package itself with its test extras (pip, editable).
# Used by scripts/install-and-start.sh and by .ci/run. Safe to run again.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_ROOT_USER_ACTION=ignore
PYTHON=${PYTHON:-python3}

if [ "$(id -u)" != 0 ]; then
    echo "$0: run as root (sudo $0)" >&2
    exit 1
fi

# busybox-static: test image rootfs; iptables/iproute2: container networking; docker-registry:
# push/pull tests against a local registry; tmux: interactive (TTY) CLI tests; libseccomp2:
# compiles the seccomp profiles; procps: `ps` for docker top; tini: `--init` (its static
# build is mounted as /sbin/docker-init, like dockerd's docker-init); docker-compose: Debian's
# Compose 1.29 (docker-py based), driven end to end by conformance/test_compose.py; chromium +
# chromium-driver: the dashboard's browser tests (selenium drives Debian's browser; nothing is
# downloaded at run time).
apt_packages=(busybox-static iptables iproute2 docker-registry tmux ca-certificates libseccomp2 procps tini
              docker-compose chromium chromium-driver)
# qemu-system-x86/debootstrap/e2fsprogs: conformance/vm/run (the cgroup v2 + systemd guest);
# PYDOCKERD_NO_VM=1 leaves them out.
if [ "${PYDOCKERD_NO_VM:-0}" = 0 ]; then
    apt_packages+=(qemu-system-x86 debootstrap e2fsprogs)
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_packages+=(python3)
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    apt_packages+=(python3-pip)
fi
if [ ! -e /usr/bin/docker ]; then
    # Debian and Ubuntu have no CLI-only package; docker.io brings a (20.10-era) CLI at
    # /usr/bin/docker, installed beside any current CLI (e.g. /usr/local/bin/docker): .ci/run
    # runs the CLI-driven tests with both. The suite derives its expectations from the CLI.
    apt_packages+=(docker.io)
fi

missing=()
for pkg in "${apt_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "=== apt-get install ${missing[*]}"
    # Keep package scripts from starting services: docker.io would start a real dockerd on
    # /var/run/docker.sock (the socket pydockerd wants), docker-registry a registry on :5000.
    policy_created=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    cleanup() { if [ "$policy_created" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
    trap cleanup EXIT
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [[ " ${missing[*]} " == *" docker.io "* ]] && command -v systemctl >/dev/null 2>&1; then
        # Only the CLI is wanted from docker.io; keep its dockerd from taking the socket later.
        systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
    fi
    if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
    fi
    cleanup
    trap - EXIT
fi

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"pydockerd needs Python >= 3.11, found {sys.version.split()[0]}")
PY

echo "=== pip install -e .[test]"
pip_args=(install -q --disable-pip-version-check -e '.[test]')
if ! "$PYTHON" -m pip "${pip_args[@]}"; then
    # Debian's system Python is "externally managed" (PEP 668); install beside it anyway.
    "$PYTHON" -m pip "${pip_args[@]}" --break-system-packages
fi
