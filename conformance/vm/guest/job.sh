#!/bin/bash
# Runs inside the guest (copied in by conformance/vm/run at every boot, so editing it needs
# no image rebuild): unpack the checkout, run pytest with the host's arguments, leave junit
# XML, the log, pytest's summary line and the exit status on the share.
set -u
X=/mnt/xfer
echo "job started at uptime $(cut -d' ' -f1 /proc/uptime)s" > "$X/timing.txt"
rm -rf /root/pydockerd && mkdir -p /root/pydockerd
tar -xf "$X/src.tar" -C /root/pydockerd
cd /root/pydockerd
export PATH=/opt/pydockerd-venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1
# tests that change the machine itself (systemd units on /run/docker.sock) run only here
export PYDOCKERD_VM_GUEST=1
# under TCG emulation on a busy host a daemon start (python imports, supervisor, bridge) has
# taken over 30 s, the default wait
export CONFORMANCE_START_TIMEOUT=${CONFORMANCE_START_TIMEOUT:-180}
{
    echo "kernel: $(uname -r)"
    echo "cgroup fs: $(stat -fc %T /sys/fs/cgroup)"
    echo "pid 1: $(cat /proc/1/comm) ($(systemctl --version | head -1))"
    echo "docker CLI: $(docker --version)"
    echo "soft nofile of this job: $(ulimit -Sn)"
} > "$X/guest-info.txt"
mapfile -t args < "$X/pytest-args"
start=$(date +%s)
python3 -m pytest -v -rfE -p no:cacheprovider --junitxml="$X/junit.xml" "${args[@]}" \
    > "$X/pytest.log" 2>&1
rc=$?
echo "pytest took $(( $(date +%s) - start ))s, exit status $rc" >> "$X/timing.txt"
echo "guest pytest ${args[*]}: $(tail -n 1 "$X/pytest.log")" > "$X/summary.txt"
if [ -s "$X/cgroupfs-args" ]; then
    # the default driver here is systemd; the cgroup tests again with the cgroupfs driver
    mapfile -t args2 < "$X/cgroupfs-args"
    start=$(date +%s)
    CONFORMANCE_PYDOCKERD_ARGS="--exec-opt native.cgroupdriver=cgroupfs" \
        python3 -m pytest -v -rfE -p no:cacheprovider --junitxml="$X/junit-cgroupfs.xml" "${args2[@]}" \
        > "$X/pytest-cgroupfs.log" 2>&1
    rc2=$?
    echo "cgroupfs pytest took $(( $(date +%s) - start ))s, exit status $rc2" >> "$X/timing.txt"
    echo "guest pytest (cgroupfs driver) ${args2[*]}: $(tail -n 1 "$X/pytest-cgroupfs.log")" \
        >> "$X/summary.txt"
    [ "$rc" = 0 ] && rc=$rc2
fi
echo "job ended at uptime $(cut -d' ' -f1 /proc/uptime)s" >> "$X/timing.txt"
journalctl -b --no-pager -o short-monotonic > "$X/journal.txt" 2>&1
echo "$rc" > "$X/done"
sync
