"""The container lifecycle through the stock CLI: run -d, ps, logs, stop/start/restart, kill,
wait, rm, rename, inspect, commit, and the daemon's error texts for the common mistakes."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conformance.cli import CliDialect, DockerCLI
from conformance.containerkit import QUICK, Box, unique
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)

# PID 1 ignores SIGTERM without a handler; these containers answer it at once.
TERM_TRAP = "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done"
RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
ZERO_TIME = "0001-01-01T00:00:00Z"


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def _parse_ts(text: str) -> datetime:
    """An RFC 3339 timestamp with up to nanoseconds (Python keeps microseconds)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    assert m, text
    micros = int((m.group(2) or "0")[:6].ljust(6, "0"))
    return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=UTC, microsecond=micros
    )


# --- run -d and inspect ---------------------------------------------------------------------


def test_run_detached_prints_id_and_runs(box: Box) -> None:
    name = box.name()
    proc = box.run("-d", "--name", name, box.image, "sleep", "300")
    assert proc.returncode == 0, proc.stderr
    cid = proc.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    info = box.inspect(name)
    assert info["Id"] == cid
    assert info["State"]["Running"] is True
    # Lookups by unique ID prefix work as well as by name.
    assert box.inspect(cid[:12])["Name"] == f"/{name}"


def test_inspect_running_container(box: Box, docker_host: str) -> None:
    name = box.run_d(
        "--label",
        "com.example=yes",
        "-m",
        "64m",
        box.image,
        "sh",
        "-c",
        "echo hi; sleep 300",
    )
    info = box.inspect(name)
    cid = info["Id"]
    assert info["Name"] == f"/{name}"
    assert info["Path"] == "sh" and info["Args"] == ["-c", "echo hi; sleep 300"]
    assert info["Image"].startswith("sha256:")
    assert info["RestartCount"] == 0
    assert RFC3339_NANO.fullmatch(info["Created"])
    assert info["LogPath"].endswith(f"/containers/{cid}/{cid}-json.log")
    for key in ("ResolvConfPath", "HostnamePath", "HostsPath"):
        assert cid in info[key], (key, info[key])

    state = info["State"]
    assert state["Status"] == "running"
    assert (state["Running"], state["Paused"], state["Restarting"], state["OOMKilled"], state["Dead"]) == (
        True, False, False, False, False,
    )  # fmt: skip
    assert state["ExitCode"] == 0 and state["Error"] == ""
    assert isinstance(state["Pid"], int) and state["Pid"] > 0
    if docker_host.startswith("unix://"):
        assert Path(f"/proc/{state['Pid']}").exists(), "State.Pid is not a host process"
    assert (
        RFC3339_NANO.fullmatch(state["StartedAt"]) and state["FinishedAt"] == ZERO_TIME
    )
    assert _parse_ts(state["StartedAt"]) >= _parse_ts(info["Created"])

    config = info["Config"]
    assert config["Image"] == box.image  # as the client gave it
    assert config["Cmd"] == ["sh", "-c", "echo hi; sleep 300"]
    assert config["Entrypoint"] is None
    assert config["Hostname"] == cid[:12]
    assert config["Labels"] == {"com.example": "yes"}
    assert (config["Tty"], config["OpenStdin"], config["AttachStdin"]) == (
        False,
        False,
        False,
    )
    assert config["User"] == "" and config["WorkingDir"] == ""

    host = info["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["AutoRemove"] is False
    assert host["RestartPolicy"]["Name"] in ("no", "")
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["ShmSize"] == 64 * 1024 * 1024
    assert "/proc/kcore" in host["MaskedPaths"] and "/proc/sys" in host["ReadonlyPaths"]


def test_inspect_exited_container(box: Box) -> None:
    name = box.name()
    assert box.run("--name", name, box.image, "sh", "-c", "exit 42").returncode == 42
    state = box.state(name)
    assert state["Status"] == "exited"
    assert state["Running"] is False and state["Pid"] == 0
    assert state["ExitCode"] == 42
    assert (
        RFC3339_NANO.fullmatch(state["FinishedAt"]) and state["FinishedAt"] != ZERO_TIME
    )
    # dockerd records StartedAt after the start returns, so for a short-lived process FinishedAt
    # can come first by microseconds: only check they are close.
    assert abs(
        _parse_ts(state["FinishedAt"]) - _parse_ts(state["StartedAt"])
    ) < timedelta(seconds=10)


def test_inspect_format(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    out = box.ok(
        "inspect", "--format", "{{.Name}} {{.State.Status}} {{.Config.Cmd}}", name
    )
    assert out == f"/{name} running [sleep 300]\n"


def test_create_then_start(box: Box) -> None:
    name = box.name()
    proc = box.cli(
        "create",
        "--name",
        name,
        "--network",
        "none",
        box.image,
        "sh",
        "-c",
        "echo from-create",
        timeout=QUICK,
    )
    assert proc.returncode == 0, proc.stderr
    state = box.state(name)
    assert (state["Status"], state["StartedAt"]) == ("created", ZERO_TIME)
    proc = box.cli("start", "-a", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, "from-create\n"), proc.stderr


# --- ps ----------------------------------------------------------------------------------------


@pytest.fixture
def ps_pair(box: Box) -> tuple[str, str, str]:
    """A running and an exited (code 3) container sharing a unique label; returns (label, running, exited)."""
    label = unique("pslabel")
    running = box.run_d(
        "--label", label, "--label", "role=runner", box.image, "sleep", "300"
    )
    exited = box.name()
    assert (
        box.run(
            "--name", exited, "--label", label, box.image, "sh", "-c", "exit 3"
        ).returncode
        == 3
    )
    return label, running, exited


def _ps(box: Box, *args: str) -> list[str]:
    return box.ok("ps", *args, "--format", "{{.Names}}").split()


def test_ps_default_shows_running_only(box: Box, ps_pair: tuple[str, str, str]) -> None:
    label, running, exited = ps_pair
    assert _ps(box, "--filter", f"label={label}") == [running]
    assert sorted(_ps(box, "-a", "--filter", f"label={label}")) == sorted(
        [running, exited]
    )


def test_ps_table_columns(box: Box, ps_pair: tuple[str, str, str]) -> None:
    label, running, _ = ps_pair
    out = box.ok("ps", "--filter", f"label={label}").splitlines()
    assert re.match(
        r"CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$", out[0]
    ), out
    assert len(out) == 2
    cid = box.inspect(running)["Id"]
    assert out[1].startswith(f'{cid[:12]}   {box.image}   "sleep 300"   '), out[1]
    assert re.search(
        r"\s+Up (Less than a second|\d+ seconds?)\s+" + re.escape(running) + "$", out[1]
    ), out[1]


def test_ps_quiet_and_no_trunc(box: Box, ps_pair: tuple[str, str, str]) -> None:
    label, running, exited = ps_pair
    ids = {n: box.inspect(n)["Id"] for n in (running, exited)}
    quiet = box.ok("ps", "-a", "-q", "--filter", f"label={label}").split()
    assert sorted(quiet) == sorted(i[:12] for i in ids.values())
    full = box.ok("ps", "-a", "-q", "--no-trunc", "--filter", f"label={label}").split()
    assert sorted(full) == sorted(ids.values())


def test_ps_format_fields(box: Box, ps_pair: tuple[str, str, str], cli_dialect: CliDialect) -> None:
    label, running, exited = ps_pair
    out = box.ok(
        "ps",
        "-a",
        "--filter",
        f"label={label}",
        "--format",
        "{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}|{{.Labels}}",
    )
    rows = {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines()}
    assert rows[running][:2] == [box.image, '"sleep 300"']
    assert rows[running][2].startswith("Up ")
    assert rows[exited][:2] == [box.image, "\"sh -c 'exit 3'\""]
    assert re.fullmatch(r"Exited \(3\) .* ago", rows[exited][2]), rows[exited]
    assert sorted(rows[running][3].split(",")) == sorted([f"{label}=", "role=runner"])
    if not cli_dialect.has_json_format:
        return
    as_json = [
        json.loads(line)
        for line in box.ok(
            "ps", "-a", "--filter", f"label={label}", "--format", "json"
        ).splitlines()
    ]
    assert sorted(j["Names"] for j in as_json) == sorted([running, exited])
    assert {j["State"] for j in as_json} == {"running", "exited"}


@pytest.mark.parametrize(
    ("filters", "expect"),
    [
        (["status=running"], "running"),
        (["status=exited"], "exited"),
        (["exited=3"], "exited"),
        (["exited=0"], None),
        (["label=role=runner"], "running"),
        (["label=role=other"], None),
        (["ancestor=busybox"], "both"),
        (["ancestor=busybox:latest"], "both"),
        (["status=created"], None),
    ],
)
def test_ps_filters(
    box: Box, ps_pair: tuple[str, str, str], filters: list[str], expect: str | None
) -> None:
    label, running, exited = ps_pair
    args = ["-a", "--filter", f"label={label}"]
    for f in filters:
        args += ["--filter", f]
    wanted = {
        "running": [running],
        "exited": [exited],
        "both": [running, exited],
        None: [],
    }[expect]
    assert sorted(_ps(box, *args)) == sorted(wanted)


def test_ps_filter_by_name_and_id(box: Box, ps_pair: tuple[str, str, str]) -> None:
    label, running, exited = ps_pair
    assert _ps(box, "-a", "--filter", f"name={exited}") == [exited]
    # name filters are regular expressions on the name (substring match).
    assert _ps(box, "-a", "--filter", f"name={exited[3:]}") == [exited]
    cid = box.inspect(running)["Id"]
    assert _ps(box, "-a", "--filter", f"id={cid[:10]}") == [running]
    assert _ps(box, "-a", "--filter", f"id={cid}") == [running]
    image_id = box.inspect(running)["Image"]
    assert sorted(
        _ps(box, "-a", "--filter", f"label={label}", "--filter", f"ancestor={image_id}")
    ) == sorted([running, exited])


def test_ps_invalid_filter(box: Box) -> None:
    proc = box.cli("ps", "-a", "--filter", "status=bogus", timeout=QUICK)
    assert proc.returncode == 1
    assert "Invalid filter 'status=bogus'" in str(proc.stderr)


# --- logs ------------------------------------------------------------------------------------


def test_logs_stdout_and_stderr(box: Box) -> None:
    name = box.name()
    assert (
        box.run(
            "--name", name, box.image, "sh", "-c", "echo out1; echo err1 >&2; echo out2"
        ).returncode
        == 0
    )
    proc = box.logs(name)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "out1\nout2\n", "err1\n")


def test_logs_tail(box: Box) -> None:
    name = box.name()
    assert (
        box.run(
            "--name",
            name,
            box.image,
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo line$i; done",
        ).returncode
        == 0
    )
    assert box.logs(name, "--tail", "2").stdout == "line4\nline5\n"
    assert box.logs(name, "--tail", "0").stdout == ""
    assert box.logs(name, "--tail", "all").stdout == "".join(
        f"line{i}\n" for i in range(1, 6)
    )
    assert box.logs(name, "--tail", "100").stdout == "".join(
        f"line{i}\n" for i in range(1, 6)
    )


def test_logs_timestamps(box: Box) -> None:
    name = box.name()
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert (
        box.run("--name", name, box.image, "sh", "-c", "echo a; echo b").returncode == 0
    )
    lines = box.logs(name, "-t").stdout.splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, ("a", "b"), strict=True):
        ts, _, rest = line.partition(" ")
        assert rest == text
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", ts), (
            ts
        )  # always 9 digits
        assert before <= _parse_ts(ts) <= datetime.now(UTC) + timedelta(seconds=5)


def test_logs_since(box: Box) -> None:
    name = box.name()
    assert (
        box.run(
            "--name", name, box.image, "sh", "-c", "echo early; sleep 1.2; echo late"
        ).returncode
        == 0
    )
    stamped = box.logs(name, "-t").stdout.splitlines()
    early = _parse_ts(stamped[0].split()[0])
    cut = (early + timedelta(seconds=0.6)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert box.logs(name, "--since", cut).stdout == "late\n"
    # Unix seconds work too.
    assert (
        box.logs(name, "--since", f"{early.timestamp() + 0.6:.6f}").stdout == "late\n"
    )
    assert (
        box.logs(name, "--since", f"{early.timestamp() - 60:.0f}").stdout
        == "early\nlate\n"
    )


def test_logs_follow_ends_when_container_exits(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", "echo first; sleep 1.5; echo second")
    started = time.monotonic()
    proc = box.logs(name, "-f", timeout=20)
    elapsed = time.monotonic() - started
    assert (proc.returncode, proc.stdout) == (0, "first\nsecond\n"), proc.stderr
    assert elapsed >= 0.5, (
        "logs -f returned before the container printed its second line"
    )


def test_logs_follow_tail(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", "echo 1; echo 2; echo 3; sleep 1; echo 4")
    box.wait_until(name, lambda s: s["Running"] and True, timeout=10)
    time.sleep(0.4)
    proc = box.logs(name, "-f", "--tail", "1", timeout=20)
    assert (proc.returncode, proc.stdout) == (0, "3\n4\n"), proc.stderr


# --- stop / start / restart / kill / wait ----------------------------------------------------


def test_stop_runs_the_term_trap(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", TERM_TRAP)
    time.sleep(0.3)  # let sh install the trap
    started = time.monotonic()
    proc = box.cli("stop", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr
    assert time.monotonic() - started < 8, "stop waited for the SIGKILL timeout"
    state = box.state(name)
    assert (state["Status"], state["ExitCode"], state["Running"]) == (
        "exited",
        0,
        False,
    )
    assert box.logs(name).stdout == "got-term\n"


def test_stop_kills_after_timeout(box: Box) -> None:
    # sh as PID 1 without a trap ignores SIGTERM: stop must escalate to SIGKILL after -t.
    name = box.run_d(box.image, "sh", "-c", "while true; do sleep 0.1; done")
    started = time.monotonic()
    proc = box.cli("stop", "-t", "1", name, timeout=QUICK)
    assert proc.returncode == 0, proc.stderr
    assert 0.8 <= time.monotonic() - started < 10
    assert box.state(name)["ExitCode"] == 137


def test_stop_signal_from_config(box: Box) -> None:
    name = box.run_d(
        "--stop-signal",
        "USR1",
        box.image,
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 0' USR1; while true; do sleep 0.1; done",
    )
    time.sleep(0.3)
    assert box.inspect(name)["Config"]["StopSignal"] == "USR1"
    assert box.cli("stop", name, timeout=QUICK).returncode == 0
    assert box.state(name)["ExitCode"] == 0
    assert box.logs(name).stdout == "got-usr1\n"


def test_stop_of_stopped_container_is_ok(box: Box) -> None:
    name = box.name()
    assert box.run("--name", name, box.image, "true").returncode == 0
    proc = box.cli("stop", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr


def test_start_stopped_container(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", f"echo started; {TERM_TRAP}")
    time.sleep(0.3)
    assert box.cli("stop", name, timeout=QUICK).returncode == 0
    first_start = box.state(name)["StartedAt"]
    proc = box.cli("start", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr
    state = box.state(name)
    assert state["Running"] is True
    assert state["StartedAt"] != first_start
    assert state["FinishedAt"] != ZERO_TIME  # keeps the previous run's end
    # Logs of both runs are kept.
    box.wait_until(name, lambda s: True)
    deadline = time.monotonic() + 5
    while box.logs(name).stdout.count("started") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert box.logs(name).stdout == "started\ngot-term\nstarted\n"


def test_start_running_container_is_ok(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    proc = box.cli("start", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr


def test_start_attach_exit_code(box: Box) -> None:
    name = box.name()
    assert (
        box.cli(
            "create",
            "--name",
            name,
            "--network",
            "none",
            box.image,
            "sh",
            "-c",
            "echo x; exit 8",
            timeout=QUICK,
        ).returncode
        == 0
    )
    proc = box.cli("start", "-a", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (8, "x\n")


def test_restart(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", f"echo started; {TERM_TRAP}")
    time.sleep(0.3)
    before = box.state(name)
    proc = box.cli("restart", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr
    after = box.state(name)
    assert after["Running"] is True
    assert after["Pid"] != before["Pid"]
    assert _parse_ts(after["StartedAt"]) > _parse_ts(before["StartedAt"])
    assert box.inspect(name)["RestartCount"] == 0  # only the restart policy counts
    deadline = time.monotonic() + 5
    while box.logs(name).stdout.count("started") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert box.logs(name).stdout == "started\ngot-term\nstarted\n"


def test_kill_exits_137(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    proc = box.cli("kill", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr
    state = box.wait_exited(name)
    assert state["ExitCode"] == 137
    assert state["OOMKilled"] is False


def test_kill_with_signal(box: Box) -> None:
    name = box.run_d(
        box.image,
        "sh",
        "-c",
        "trap 'echo got-usr1' USR1; while true; do sleep 0.1; done",
    )
    time.sleep(0.3)
    # One at a time: signals sent while the trap is pending coalesce.
    for count, signal_spec in enumerate(("USR1", "SIGUSR1", "10"), start=1):
        proc = box.cli("kill", "-s", signal_spec, name, timeout=QUICK)
        assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr
        deadline = time.monotonic() + 5
        while (
            box.logs(name).stdout.count("got-usr1") < count
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert box.logs(name).stdout == "got-usr1\n" * count
    assert box.state(name)["Running"] is True


def test_kill_not_running(box: Box) -> None:
    name = box.name()
    assert box.run("--name", name, box.image, "true").returncode == 0
    proc = box.cli("kill", name, timeout=QUICK)
    assert proc.returncode == 1
    stderr = str(proc.stderr)
    assert stderr.startswith("Error response from daemon: "), stderr
    # 20.10: "Cannot kill container: N: Container <id> is not running"; 28 lowercases it.
    assert re.search(
        rf"(?i)cannot kill container: {name}: container [0-9a-f]{{64}} is not running",
        stderr,
    ), stderr


def test_kill_invalid_signal(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    proc = box.cli("kill", "-s", "NOSUCHSIG", name, timeout=QUICK)
    assert proc.returncode == 1
    assert "Invalid signal: NOSUCHSIG" in str(proc.stderr)
    assert box.state(name)["Running"] is True


def test_wait_prints_exit_code(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", "sleep 0.5; exit 7")
    proc = box.cli("wait", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, "7\n"), proc.stderr
    # Waiting on an already exited container answers at once with the same code.
    assert box.ok("wait", name) == "7\n"


# --- rm / rename -----------------------------------------------------------------------------


def test_rm_force_running(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    proc = box.cli("rm", "-f", name, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr
    gone = box.cli("inspect", "--type", "container", name, timeout=QUICK)
    assert gone.returncode == 1
    assert f"No such container: {name}" in str(gone.stderr)


def test_rm_stopped(box: Box) -> None:
    name = box.name()
    assert box.run("--name", name, box.image, "true").returncode == 0
    assert box.ok("rm", name) == f"{name}\n"
    assert box.cli("rm", name, timeout=QUICK).returncode == 1


def test_rm_running_without_force_is_409(box: Box, raw: RawHTTP) -> None:
    name = box.run_d(box.image, "sleep", "300")
    cid = box.inspect(name)["Id"]
    proc = box.cli("rm", name, timeout=QUICK)
    assert proc.returncode == 1
    stderr = str(proc.stderr)
    assert stderr.startswith("Error response from daemon: "), stderr
    # 20.10: "You cannot remove a running container <id>. Stop the container before attempting
    # removal or force remove"; 28: 'cannot remove container "<name>": container is running: stop
    # the container before removing or force remove' (the name as the client gave it).
    assert re.search(r"(?i)cannot remove (a running )?container", stderr), stderr
    assert cid in stderr or f'"{name}"' in stderr, stderr
    assert "or force remove" in stderr
    resp = raw.delete(f"/containers/{name}")
    assert resp.status == 409, resp.describe()
    assert box.state(name)["Running"] is True


def test_rename(box: Box) -> None:
    old = box.run_d(box.image, "sleep", "300")
    new = box.name()
    proc = box.cli("rename", old, new, timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    assert box.inspect(new)["Name"] == f"/{new}"
    assert box.cli("inspect", "--type", "container", old, timeout=QUICK).returncode == 1
    assert _ps(box, "--filter", f"name={new}") == [new]


def test_rename_to_taken_name(box: Box) -> None:
    first = box.run_d(box.image, "sleep", "300")
    second = box.run_d(box.image, "sleep", "300")
    first_id = box.inspect(first)["Id"]
    proc = box.cli("rename", second, first, timeout=QUICK)
    assert proc.returncode == 1
    stderr = str(proc.stderr)
    assert (
        f'Conflict. The container name "/{first}" is already in use by container "{first_id}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    ) in stderr, stderr
    assert box.inspect(second)["Name"] == f"/{second}"


# --- errors ----------------------------------------------------------------------------------


def test_start_missing_container(box: Box) -> None:
    missing = unique("missing")
    proc = box.cli("start", missing, timeout=QUICK)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert str(proc.stderr) == (
        f"Error response from daemon: No such container: {missing}\nError: failed to start containers: {missing}\n"
    )


def test_name_conflict_is_409(box: Box, raw: RawHTTP) -> None:
    name = box.run_d(box.image, "sleep", "300")
    cid = box.inspect(name)["Id"]
    expected = (
        f'Conflict. The container name "/{name}" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )
    proc = box.run("--name", name, box.image, "true")
    assert proc.returncode == 125
    assert proc.stderr.startswith(f"docker: Error response from daemon: {expected}"), (
        proc.stderr
    )
    created = box.cli("create", "--name", name, box.image, "true", timeout=QUICK)
    assert created.returncode == 1
    assert str(created.stderr).startswith(f"Error response from daemon: {expected}"), (
        created.stderr
    )
    resp = raw.post(
        f"/containers/create?name={name}",
        json_body={"Image": box.image, "Cmd": ["true"]},
    )
    assert resp.status == 409, resp.describe()
    assert resp.error_message() == expected


def test_rmi_of_image_in_use_is_409(box: Box, raw: RawHTTP) -> None:
    source = box.name()
    assert (
        box.run("--name", source, box.image, "sh", "-c", "echo data > /file").returncode
        == 0
    )
    image = box.tracker.image(f"{unique('rmiconf')}:1")
    assert box.cli("commit", source, image, timeout=60).returncode == 0
    user = box.name()
    assert box.run("--name", user, image, "true").returncode == 0
    image_id = box.inspect(user)["Image"]
    user_id = box.inspect(user)["Id"]

    proc = box.cli("rmi", image, timeout=QUICK)
    assert proc.returncode == 1
    assert str(proc.stderr) == (
        f'Error response from daemon: conflict: unable to remove repository reference "{image}" (must force) - '
        f"container {user_id[:12]} is using its referenced image {image_id.removeprefix('sha256:')[:12]}\n"
    )
    proc = box.cli("rmi", image_id, timeout=QUICK)
    assert proc.returncode == 1
    assert str(proc.stderr) == (
        f"Error response from daemon: conflict: unable to delete {image_id.removeprefix('sha256:')[:12]} "
        f"(must be forced) - image is being used by stopped container {user_id[:12]}\n"
    )
    resp = raw.delete(f"/images/{image}")
    assert resp.status == 409, resp.describe()
    assert box.cli("image", "inspect", image, timeout=QUICK).returncode == 0


# --- commit ----------------------------------------------------------------------------------


def test_commit_and_run_committed_image(box: Box) -> None:
    source = box.name()
    assert (
        box.run(
            "--name",
            source,
            box.image,
            "sh",
            "-c",
            "mkdir -p /data && echo committed > /data/file",
        ).returncode
        == 0
    )
    image = box.tracker.image(f"{unique('commitconf')}:v1")
    proc = box.cli(
        "commit",
        "--change",
        'CMD ["cat", "/data/file"]',
        "--change",
        "ENV COMMITTED=yes",
        source,
        image,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", str(proc.stdout)), proc.stdout
    image_id = str(proc.stdout).strip()

    run = box.run("--rm", image)
    assert (run.returncode, run.stdout) == (0, "committed\n"), run.stderr
    run = box.run("--rm", image, "sh", "-c", 'echo "$COMMITTED"')
    assert run.stdout == "yes\n"

    info = json.loads(box.ok("image", "inspect", image))[0]
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["cat", "/data/file"]
    assert "COMMITTED=yes" in info["Config"]["Env"]
    # API < 1.45 names the source container; later versions drop the field.
    assert info.get("Container", box.inspect(source)["Id"]) == box.inspect(source)["Id"]
    base = json.loads(box.ok("image", "inspect", box.image))[0]
    assert (
        info["RootFS"]["Layers"][: len(base["RootFS"]["Layers"])]
        == base["RootFS"]["Layers"]
    )
    assert len(info["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1


def test_commit_running_container(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", "echo live > /live; sleep 300")
    box.wait_until(name, lambda s: s["Running"])
    time.sleep(0.3)
    image = box.tracker.image(f"{unique('commitlive')}:v1")
    assert box.cli("commit", name, image, timeout=60).returncode == 0
    assert box.state(name)["Running"] is True  # paused for the commit, then resumed
    run = box.run("--rm", image, "cat", "/live")
    assert (run.returncode, run.stdout) == (0, "live\n"), run.stderr
    # The committed image keeps the container's command as its CMD.
    assert json.loads(box.ok("image", "inspect", image))[0]["Config"]["Cmd"] == [
        "sh",
        "-c",
        "echo live > /live; sleep 300",
    ]


# --- log drivers and auto-remove -------------------------------------------------------------


def test_log_driver_none(box: Box) -> None:
    name = box.name()
    proc = box.run(
        "--name", name, "--log-driver", "none", box.image, "echo", "still-attached"
    )
    assert (proc.returncode, proc.stdout) == (0, "still-attached\n"), proc.stderr
    assert box.inspect(name)["HostConfig"]["LogConfig"]["Type"] == "none"
    logs = box.logs(name)
    assert logs.returncode == 1
    assert "configured logging driver does not support reading" in logs.stderr


def test_json_file_on_disk_format(box: Box, docker_host: str) -> None:
    if not docker_host.startswith("unix://"):
        pytest.skip("the engine under test is not on this host")
    name = box.name()
    assert (
        box.run(
            "--name",
            name,
            box.image,
            "sh",
            "-c",
            "echo e >&2; sleep 0.2; echo a; printf partial",
        ).returncode
        == 0
    )
    path = Path(box.inspect(name)["LogPath"])
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stderr", "e\n"),
        ("stdout", "a\n"),
        ("stdout", "partial"),
    ]
    for entry in entries:
        assert sorted(entry) == ["log", "stream", "time"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", entry["time"]), (
            entry
        )
    # The CLI reads back exactly what was written, partial last line included.
    assert box.logs(name).stdout == "a\npartial"


def test_detached_rm_removes_after_exit(box: Box) -> None:
    name = box.name()
    proc = box.run("-d", "--rm", "--name", name, box.image, "sh", "-c", "sleep 0.3")
    assert proc.returncode == 0, proc.stderr
    assert box.inspect(name)["HostConfig"]["AutoRemove"] is True
    deadline = time.monotonic() + 15
    while box.cli("container", "inspect", name, timeout=QUICK).returncode == 0:
        assert time.monotonic() < deadline, "--rm container still there after it exited"
        time.sleep(0.1)


# --- more ps, logs and start ----------------------------------------------------------------


@pytest.fixture
def ps_trio(box: Box) -> tuple[str, list[str]]:
    """Three exited containers created in order under one unique label; (label, [A, B, C])."""
    label = unique("pstrio")
    names = []
    for _ in range(3):
        name = box.name()
        assert (
            box.run("--name", name, "--label", label, box.image, "true").returncode == 0
        )
        names.append(name)
    return label, names


def test_ps_newest_first_and_last(box: Box, ps_trio: tuple[str, list[str]]) -> None:
    label, (a, b, c) = ps_trio
    assert _ps(box, "-a", "--filter", f"label={label}") == [c, b, a]
    assert _ps(box, "-a", "-n", "2", "--filter", f"label={label}") == [c, b]
    assert _ps(box, "-a", "--last", "1", "--filter", f"label={label}") == [c]
    # -n implies -a: exited containers are listed.
    assert _ps(box, "-n", "1", "--filter", f"label={label}") == [c]


def test_ps_before_and_since(box: Box, ps_trio: tuple[str, list[str]]) -> None:
    label, (a, b, c) = ps_trio
    assert _ps(box, "-a", "--filter", f"label={label}", "--filter", f"before={b}") == [
        a
    ]
    assert _ps(box, "-a", "--filter", f"label={label}", "--filter", f"since={b}") == [c]
    b_id = box.inspect(b)["Id"]
    assert _ps(
        box, "-a", "--filter", f"label={label}", "--filter", f"since={b_id}"
    ) == [c]
    missing = unique("missing")
    proc = box.cli("ps", "-a", "--filter", f"before={missing}", timeout=QUICK)
    assert proc.returncode == 1
    assert (
        missing in str(proc.stderr) and "no such container" in str(proc.stderr).lower()
    )


def test_logs_until(box: Box) -> None:
    name = box.name()
    proc = box.run(
        "--name", name, box.image, "sh", "-c", "echo early; sleep 1.2; echo late"
    )
    assert proc.returncode == 0
    early = _parse_ts(box.logs(name, "-t").stdout.splitlines()[0].split()[0])
    cut = (early + timedelta(seconds=0.6)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert box.logs(name, "--until", cut).stdout == "early\n"


def test_logs_of_tty_container_are_raw(box: Box) -> None:
    name = box.name()
    assert (
        box.run(
            "--name", name, "-t", box.image, "sh", "-c", "echo out; echo err >&2"
        ).returncode
        == 0
    )
    logs = box.cli("logs", name, input=b"", timeout=QUICK)
    # One stream, the pty's CRLF kept, stderr merged into stdout.
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, b"out\r\nerr\r\n", b"")


def test_start_attach_interactive_with_piped_stdin(box: Box) -> None:
    name = box.name()
    proc = box.cli(
        "create",
        "-i",
        "--name",
        name,
        "--network",
        "none",
        box.image,
        "tr",
        "a-z",
        "A-Z",
        timeout=QUICK,
    )
    assert proc.returncode == 0, proc.stderr
    started = box.cli("start", "-ai", name, input="abc\n", timeout=QUICK)
    assert (started.returncode, started.stdout) == (0, "ABC\n"), started.stderr


def test_run_large_stdin_roundtrip(box: Box) -> None:
    data = "".join(f"{i:08d}\n" for i in range(50000))  # 450 kB
    proc = box.run("--rm", "-i", box.image, "cat", input=data, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == data
