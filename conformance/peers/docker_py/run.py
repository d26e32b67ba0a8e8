"""Run docker-py's own integration suite (tag 7.1.0) against an engine and count the results.

The tests are never part of this repository: they are exported from a docker-py git repository
(a local mirror path or a URL, ``--source`` or ``$DOCKER_PY_SOURCE``) into a temporary
directory with ``git archive``. The images the suite expects (``alpine:3.10``, ``alpine``,
``busybox``) are look-alikes imported through the API from Debian's busybox-static (Docker Hub
is not reachable), and the tests that need Hub, swarm, services, plugins or credential helpers
are deselected (see DESELECT). See README.md in this directory.

    python3 -m conformance.peers.docker_py.run --source PATH_OR_URL --host unix:///tmp/ref.sock
    python3 -m conformance.peers.docker_py.run --source PATH_OR_URL --start-pydockerd \\
        --bridge pydt171 --bip 10.214.171.1/24
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import docker

from conformance.daemon import DaemonSettings, PydockerdProcess
from conformance.images import busybox_rootfs_tar, find_busybox

TAG = "7.1.0"
API_VERSIONS = ("1.41", "1.44")
IMAGES = ("alpine:3.10", "alpine:latest", "busybox:latest")

# Whole modules: swarm-mode objects (secrets, configs, services, nodes), plugins (pulled from
# Hub), credential helpers (need docker-credential-* binaries and gpg).
DESELECT_FILES = (
    "api_swarm_test.py",
    "api_service_test.py",
    "api_secret_test.py",
    "api_config_test.py",
    "api_plugin_test.py",
    "models_swarm_test.py",
    "models_services_test.py",
    "models_nodes_test.py",
    "credentials",
)
# Single tests that need Docker Hub (pull, distribution inspect, a pull attempt for a missing
# image) or a swarm (attachable/ingress/scoped networks).
DESELECT_TESTS = (
    "api_image_test.py::PullImageTest",
    "api_image_test.py::ImportImageTest::test_get_load_image",
    "api_image_test.py::PruneImagesTest::test_prune_images",
    "api_image_test.py::InspectDistributionTest::test_inspect_distribution",
    "models_images_test.py::ImageCollectionTest::test_list",
    "models_images_test.py::ImageCollectionTest::test_list_with_repository",
    "models_images_test.py::ImageCollectionTest::test_pull",
    "models_images_test.py::ImageCollectionTest::test_pull_with_tag",
    "models_images_test.py::ImageCollectionTest::test_pull_with_sha",
    "models_images_test.py::ImageCollectionTest::test_pull_multiple",
    "models_images_test.py::ImageTest::test_tag_and_remove",
    "models_containers_test.py::ContainerCollectionTest::test_run_with_image_that_does_not_exist",
    "api_network_test.py::TestNetworks::test_create_network_attachable",
    "api_network_test.py::TestNetworks::test_create_network_ingress",
    "api_network_test.py::TestNetworks::test_create_inspect_network_with_scope",
)

# What the suite relies on in alpine beyond busybox: its users (exec as "postgres") and /var/opt.
ALPINE_PASSWD = (
    "root:x:0:0:root:/root:/bin/ash\n"
    "daemon:x:2:2:daemon:/sbin:/sbin/nologin\n"
    "postgres:x:70:70::/var/lib/postgresql:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/:/sbin/nologin\n"
)
ALPINE_GROUP = "root:x:0:root\ndaemon:x:2:root,bin,daemon\npostgres:x:70:\nnobody:x:65534:\n"


def alpine_rootfs(busybox_tar: bytes) -> bytes:
    """The busybox rootfs with alpine's users and /var/opt."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(busybox_tar)) as src, tarfile.open(
        fileobj=out, mode="w", format=tarfile.USTAR_FORMAT
    ) as dst:
        for member in src.getmembers():
            replaced = {"etc/passwd": ALPINE_PASSWD, "etc/group": ALPINE_GROUP}.get(member.name)
            if replaced is not None:
                member.size = len(replaced)
                dst.addfile(member, io.BytesIO(replaced.encode()))
            else:
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
            if member.name == "var":
                opt = tarfile.TarInfo("var/opt")
                opt.type, opt.mode, opt.mtime = tarfile.DIRTYPE, 0o755, member.mtime
                dst.addfile(opt)
    return out.getvalue()


def export_tests(source: str, dest: Path) -> Path:
    """``tests/`` of docker-py at TAG from a git repository (path or URL) into ``dest``."""
    git_dir = source
    if not Path(source).exists():
        clone = dest / "docker-py.git"
        subprocess.run(["git", "clone", "--bare", "--quiet", source, str(clone)], check=True)
        git_dir = str(clone)
    where = ["--git-dir", git_dir] if (Path(git_dir) / "HEAD").exists() else ["-C", git_dir]
    archive = subprocess.run(
        ["git", *where, "archive", "--format=tar", TAG, "tests", "pytest.ini"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def import_images(host: str) -> None:
    """Look-alikes of the images the suite uses, imported through the API (where the engine
    does not have the reference yet)."""
    busybox = busybox_rootfs_tar(find_busybox())
    rootfs = {"alpine": alpine_rootfs(busybox), "busybox": busybox}
    client = docker.APIClient(base_url=host, version="auto", timeout=300)
    try:
        for ref in IMAGES:
            try:
                client.inspect_image(ref)
                continue
            except docker.errors.NotFound:
                pass
            repo, tag = ref.rsplit(":", 1)
            client.import_image_from_data(rootfs[repo], repository=repo, tag=tag, changes=['CMD ["sh"]'])
    finally:
        client.close()


def snapshot(host: str) -> tuple[set[str], set[str]]:
    """IDs of all containers and images the engine has now."""
    client = docker.APIClient(base_url=host, version="auto", timeout=300)
    try:
        containers = {c["Id"] for c in client.containers(all=True)}
        images = {i["Id"] for i in client.images(all=True)}
        return containers, images
    finally:
        client.close()


def clean_up(host: str, before: tuple[set[str], set[str]]) -> None:
    """Remove what the run left on the engine: containers of the images it imported or of
    images new since ``before``, then those images. The suite does not tidy up after every
    test; on a shared engine, objects others made meanwhile from other images are kept."""
    client = docker.APIClient(base_url=host, version="auto", timeout=300)
    try:
        old_containers, old_images = before
        new_images = {i["Id"] for i in client.images(all=True)} - old_images
        removed = 0
        for c in client.containers(all=True):
            if c["Id"] not in old_containers and c["ImageID"] in new_images:
                with contextlib.suppress(docker.errors.APIError):
                    client.remove_container(c["Id"], force=True, v=True)
                    removed += 1
        # children first: the newest images are removed before their parents
        left = sorted(client.images(all=True), key=lambda i: -int(i["Created"]))
        for image in left:
            if image["Id"] in new_images:
                with contextlib.suppress(docker.errors.APIError):
                    client.remove_image(image["Id"], force=True)
                    removed += 1
        print(f"cleaned up {removed} containers and images", flush=True)
    finally:
        client.close()


def engine_max(host: str) -> str:
    client = docker.APIClient(base_url=host, version="auto")
    try:
        return str(client.version()["ApiVersion"])
    finally:
        client.close()


def _newer(a: str, b: str) -> bool:
    return tuple(map(int, a.split("."))) > tuple(map(int, b.split(".")))


def deselect_args(tests_dir: Path) -> list[str]:
    args: list[str] = []
    for name in DESELECT_FILES:
        args += ["--ignore", str(tests_dir / "integration" / name)]
    for nodeid in DESELECT_TESTS:
        args += ["--deselect", f"tests/integration/{nodeid}"]
    return args


def run_suite(root: Path, host: str, api: str, junit: Path, extra: list[str]) -> dict[str, str]:
    # A config dir of its own (docker-py reads detachKeys and auth from config.json) and no
    # contexts left by the previous run: with no config.json docker-py keeps its contexts in
    # the current directory, and its context tests do not all remove theirs.
    config_dir = root / f"docker-config-{api}"
    config_dir.mkdir(exist_ok=True)
    shutil.rmtree(root / "contexts", ignore_errors=True)
    env = dict(os.environ, DOCKER_HOST=host, DOCKER_TEST_API_VERSION=api, DOCKER_CONFIG=str(config_dir))
    for var in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT", "DOCKER_API_VERSION"):
        env.pop(var, None)
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short", "-rfE",
        f"--junitxml={junit}", "-o", "junit_family=xunit2",
        *deselect_args(root / "tests"), *extra, "tests/integration",
    ]  # fmt: skip
    subprocess.run(cmd, cwd=root, env=env)
    return outcomes(junit)


def outcomes(junit: Path) -> dict[str, str]:
    """nodeid-ish ``file::Class::test`` -> passed / failed / error / skipped."""
    result: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kind = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                kind = "failed" if child.tag == "failure" else child.tag
        result[name] = kind
    return result


def regressions(res: dict[str, str], reference_dir: Path, api: str) -> list[str]:
    """Tests that pass on the reference run (its results-<api>.json, else the newest it has)
    and not here."""
    files = sorted(reference_dir.glob("results-*.json"))
    wanted = reference_dir / f"results-{api}.json"
    source = wanted if wanted.exists() else (files[-1] if files else None)
    if source is None:
        return [f"  no reference results in {reference_dir}"]
    reference = json.loads(source.read_text())
    lost = sorted(k for k, v in reference.items() if v == "passed" and res.get(k) in ("failed", "error"))
    return [f"  passing on the reference ({source.name}) but not here: {len(lost)}", *[f"    {k}" for k in lost]]


def summary(res: dict[str, str]) -> str:
    counts = {k: sum(1 for v in res.values() if v == k) for k in ("passed", "failed", "error", "skipped")}
    return " ".join(f"{v} {k}" for k, v in counts.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=os.environ.get("DOCKER_PY_SOURCE"),
                        help="docker-py git repository (path or URL); default $DOCKER_PY_SOURCE")
    parser.add_argument("--host", default=os.environ.get("DOCKER_HOST"), help="engine to test (unix:///...)")
    parser.add_argument("--start-pydockerd", action="store_true", help="start a private pydockerd instead")
    parser.add_argument("--pydockerd-tree", default=None,
                        help="run the pydockerd of this source tree (default: this checkout)")
    parser.add_argument("--bridge", default="pydt171", help="its bridge (with --start-pydockerd)")
    parser.add_argument("--bip", default="10.214.171.1/24", help="its bridge address (with --start-pydockerd)")
    parser.add_argument("--api", action="append", help=f"API versions (default {', '.join(API_VERSIONS)})")
    parser.add_argument("--out", default=None, help="directory for junit XML and results JSON")
    parser.add_argument("--reference-results", default=None,
                        help="--out directory of a run against the reference: list what passes there only")
    parser.add_argument("--keep", action="store_true", help="keep what the run left on the engine")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if not args.source:
        parser.error("--source or $DOCKER_PY_SOURCE: a docker-py git repository (path or URL)")
    if not args.start_pydockerd and not args.host:
        parser.error("--host, $DOCKER_HOST or --start-pydockerd")

    out = Path(args.out or tempfile.mkdtemp(prefix="dockerpy-results-"))
    out.mkdir(parents=True, exist_ok=True)
    daemon: PydockerdProcess | None = None
    with tempfile.TemporaryDirectory(prefix="dockerpy-") as tmp:
        root = export_tests(args.source, Path(tmp))
        try:
            host = args.host
            if args.start_pydockerd:
                settings = DaemonSettings(bridge=args.bridge, bip=args.bip, log_level="info")
                daemon = PydockerdProcess(settings, cwd=Path(args.pydockerd_tree or Path(__file__).resolve().parents[3]))
                daemon.start()
                host = daemon.host
                print(f"pydockerd on {host}, log {daemon.log_path}", flush=True)
            before = snapshot(host)
            import_images(host)
            lines = []
            for api in args.api or API_VERSIONS:
                if _newer(api, engine_max(host)):
                    lines.append(f"API {api}: skipped, the engine serves up to {engine_max(host)}")
                    continue
                res = run_suite(root, host, api, out / f"junit-{api}.xml", args.pytest_args)
                (out / f"results-{api}.json").write_text(json.dumps(res, indent=1, sort_keys=True))
                bad = sorted(k for k, v in res.items() if v in ("failed", "error"))
                lines.append(f"API {api}: {summary(res)}")
                lines += [f"    {k}" for k in bad]
                if args.reference_results:
                    lines += regressions(res, Path(args.reference_results), api)
            print(f"\n=== docker-py {TAG} on {host} (results in {out})")
            print("\n".join(lines))
            if not args.keep:
                clean_up(host, before)
        finally:
            if daemon is not None:
                daemon.stop()
                if not args.keep:
                    daemon.remove_dirs()  # its leftovers, its bridge and its directories
    return 0


if __name__ == "__main__":
    sys.exit(main())
