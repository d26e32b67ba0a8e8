"""Local image commands through the stock docker CLI: import, images, inspect, history, tag,
rmi, prune, save and load.

Checked against dockerd 20.10 (API 1.41) and run against pydockerd (API 1.50); the CLI hides
most per-version shape differences, so the same expectations hold for both. Every image gets a
unique repository name and prune is always scoped by a per-test label: these tests are safe on
an engine that other people use.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from conformance.cli import CliDialect, DockerCLI
from conformance.imagetools import IMAGE_ID, remove_repo, diff_id, json_stream, layer_size, read_saved, tiny_layer, unique_repo
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

NO_SUCH = "Error response from daemon: No such image: {}"


@pytest.fixture
def repo(api_client: docker.APIClient) -> Iterator[str]:
    """A fresh repository name; every image tagged into it is removed afterwards."""
    name = unique_repo()
    yield name
    remove_repo(api_client, name)


def _import(cli: DockerCLI, layer: bytes, ref: str = "", *changes: str) -> str:
    """``docker import [-c ...] - [ref]`` with the layer on stdin; returns the image ID."""
    args = ["import"]
    for change in changes:
        args += ["-c", change]
    args.append("-")
    if ref:
        args.append(ref)
    proc = cli(*args, input=layer, check=True)
    out = proc.stdout.decode() if isinstance(proc.stdout, bytes) else proc.stdout
    image_id = out.strip()
    assert IMAGE_ID.match(image_id), out
    return image_id


def _inspect(cli: DockerCLI, ref: str) -> dict:  # type: ignore[type-arg]
    data = json.loads(cli.ok("image", "inspect", ref))
    assert isinstance(data, list) and len(data) == 1
    return data[0]  # type: ignore[no-any-return]


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def _table(out: str) -> tuple[list[str], list[list[str]]]:
    """Header columns and rows of a CLI table (columns separated by 2+ spaces)."""
    lines = _lines(out)
    split = [re.split(r"\s{2,}", line.strip()) for line in lines]
    return split[0], split[1:]


# --- import -------------------------------------------------------------------------------


def test_import_file_with_cmd(docker_cli: DockerCLI, busybox_tar: Path, repo: str) -> None:
    ref = f"{repo}:latest"
    out = docker_cli.ok("import", "-c", 'CMD ["sh"]', str(busybox_tar), ref, timeout=120)
    image_id = out.strip()
    assert IMAGE_ID.match(image_id), out
    image = _inspect(docker_cli, ref)
    assert image["Id"] == image_id
    assert image["RepoTags"] == [ref]
    assert image["Config"]["Cmd"] == ["sh"]
    assert image["Comment"] == "Imported from -"
    layer = busybox_tar.read_bytes()
    # The diff ID is the digest of the tar as given, so it is the same on every engine.
    assert image["RootFS"] == {"Type": "layers", "Layers": [diff_id(layer)]}
    assert image["Size"] == layer_size(layer)


def test_import_from_stdin(docker_cli: DockerCLI, busybox_tar: Path, repo: str) -> None:
    layer = busybox_tar.read_bytes()
    image_id = _import(docker_cli, layer, f"{repo}:stdin", 'CMD ["sh"]')
    image = _inspect(docker_cli, f"{repo}:stdin")
    assert image["Id"] == image_id
    assert image["RootFS"]["Layers"] == [diff_id(layer)]
    assert image["Config"]["Cmd"] == ["sh"]


def test_import_gzip_gives_same_diff_id(docker_cli: DockerCLI, repo: str, tmp_path: Path) -> None:
    layer = tiny_layer()
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(gzip.compress(layer))
    docker_cli.ok("import", str(path), f"{repo}:gz")
    assert _inspect(docker_cli, f"{repo}:gz")["RootFS"]["Layers"] == [diff_id(layer)]


def test_import_untagged_is_dangling(docker_cli: DockerCLI, tracker: ResourceTracker) -> None:
    image_id = tracker.image(_import(docker_cli, tiny_layer()))
    image = _inspect(docker_cli, image_id)
    assert image["RepoTags"] == []
    assert image["RepoDigests"] == []


def test_import_changes_and_message(docker_cli: DockerCLI, repo: str) -> None:
    ref = f"{repo}:changes"
    proc = docker_cli(
        "import",
        "-c", "ENV A=1 B=two",
        "-c", "WORKDIR /srv",
        "-c", 'ENTRYPOINT ["/bin/sh", "-c"]',
        "-c", 'CMD ["echo hi"]',
        "-c", "EXPOSE 8080/tcp 53/udp",
        "-c", 'LABEL a=b c="d e"',
        "-c", "USER nobody",
        "-c", "VOLUME /data",
        "-m", "my message",
        "-",
        ref,
        input=tiny_layer(),
        check=True,
    )  # fmt: skip
    assert proc.returncode == 0
    image = _inspect(docker_cli, ref)
    config = image["Config"]
    assert config["Env"] == ["A=1", "B=two"]
    assert config["WorkingDir"] == "/srv"
    assert config["Entrypoint"] == ["/bin/sh", "-c"]
    assert config["Cmd"] == ["echo hi"]
    assert config["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert config["Labels"] == {"a": "b", "c": "d e"}
    assert config["User"] == "nobody"
    assert config["Volumes"] == {"/data": {}}
    assert image["Comment"] == "my message"
    history = docker_cli.ok("history", "--format", "{{.Comment}}", ref)
    assert _lines(history) == ["my message"]


def test_import_invalid_change_is_rejected(docker_cli: DockerCLI, repo: str) -> None:
    proc = docker_cli("import", "-c", "RUN echo hi", "-", f"{repo}:bad", input=tiny_layer())
    assert proc.returncode == 1
    assert proc.stderr == b"Error response from daemon: run is not a valid change command\n"
    assert docker_cli("image", "inspect", f"{repo}:bad").returncode == 1


# --- images -------------------------------------------------------------------------------


def test_images_table_quiet_format(docker_cli: DockerCLI, repo: str, cli_dialect: CliDialect) -> None:
    image_id = _import(docker_cli, tiny_layer(), f"{repo}:one")
    docker_cli.ok("tag", f"{repo}:one", f"{repo}:two")
    short = image_id.removeprefix("sha256:")[:12]

    header, rows = _table(docker_cli.ok("images", repo))
    assert header == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert sorted(r[:3] for r in rows) == [[repo, "one", short], [repo, "two", short]]
    assert all(r[4] == "3.6kB" for r in rows), rows

    assert set(_lines(docker_cli.ok("images", "-q", repo))) == {short}
    assert set(_lines(docker_cli.ok("images", "-q", "--no-trunc", repo))) == {image_id}
    formatted = docker_cli.ok("images", "--format", "{{.Repository}}:{{.Tag}}", repo)
    assert sorted(_lines(formatted)) == [f"{repo}:one", f"{repo}:two"]
    if cli_dialect.has_json_format:
        as_json = [json.loads(line) for line in _lines(docker_cli.ok("images", "--format", "json", repo))]
        assert {j["ID"] for j in as_json} == {short}
        assert sorted(j["Tag"] for j in as_json) == ["one", "two"]


def test_images_digests_and_all(docker_cli: DockerCLI, repo: str) -> None:
    image_id = _import(docker_cli, tiny_layer(), f"{repo}:d")
    short = image_id.removeprefix("sha256:")[:12]
    header, rows = _table(docker_cli.ok("images", "--digests", repo))
    assert header == ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    assert [r[:4] for r in rows] == [[repo, "d", "<none>", short]]
    _, rows = _table(docker_cli.ok("images", "-a", repo))
    assert [r[:3] for r in rows] == [[repo, "d", short]]


def test_images_filter_dangling_and_label(docker_cli: DockerCLI, repo: str, tracker: ResourceTracker) -> None:
    label = f"conformance.run={uuid.uuid4().hex}"
    tagged = _import(docker_cli, tiny_layer(), f"{repo}:tagged", f"LABEL {label}")
    dangling = tracker.image(_import(docker_cli, tiny_layer(), "", f"LABEL {label}"))
    _import(docker_cli, tiny_layer(), f"{repo}:unlabelled")

    def ids(*filters: str) -> set[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return set(_lines(docker_cli.ok("images", "-q", "--no-trunc", *args)))

    assert ids(f"label={label}") == {tagged, dangling}
    assert ids(f"label={label}", "dangling=true") == {dangling}
    assert ids(f"label={label}", "dangling=false") == {tagged}
    assert dangling in ids("dangling=true")
    assert tagged not in ids("dangling=true")
    assert ids(f"label={label.split('=')[0]}", f"label={label}") == {tagged, dangling}
    _, rows = _table(docker_cli.ok("images", "--filter", "dangling=true", "--filter", f"label={label}"))
    assert [r[:3] for r in rows] == [["<none>", "<none>", dangling.removeprefix("sha256:")[:12]]]


def test_images_filter_reference(docker_cli: DockerCLI, repo: str) -> None:
    a = _import(docker_cli, tiny_layer(), f"{repo}:a")
    b = _import(docker_cli, tiny_layer(), f"{repo}-other:b")
    try:

        def refs(pattern: str) -> list[str]:
            out = docker_cli.ok("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={pattern}")
            return sorted(_lines(out))

        assert refs(f"{repo}:a") == [f"{repo}:a"]
        assert refs(f"{repo}*") == sorted([f"{repo}:a", f"{repo}-other:b"])
        assert refs(f"{repo}*:b") == [f"{repo}-other:b"]
        assert refs(f"{repo}") == [f"{repo}:a"]
        assert refs(f"{repo}-nothing*") == []
        assert a != b
    finally:
        docker_cli("rmi", f"{repo}-other:b")


def test_images_filter_before_since(docker_cli: DockerCLI, repo: str) -> None:
    first = _import(docker_cli, tiny_layer(), f"{repo}:first")
    second = _import(docker_cli, tiny_layer(), f"{repo}:second")
    third = _import(docker_cli, tiny_layer(), f"{repo}:third")

    def ids(*filters: str) -> set[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return set(_lines(docker_cli.ok("images", "-q", "--no-trunc", *args, "--filter", f"reference={repo}")))

    assert ids(f"since={repo}:first") == {second, third}
    assert ids(f"before={repo}:third") == {first, second}
    assert ids(f"since={repo}:first", f"before={repo}:third") == {second}
    assert ids(f"since={second}") == {third}  # by full ID
    assert ids(f"before={first.removeprefix('sha256:')[:12]}") == set()  # by short ID


def test_images_filter_unknown_image_in_since(docker_cli: DockerCLI, repo: str) -> None:
    proc = docker_cli("images", "--filter", f"since={repo}:missing")
    assert proc.returncode == 1
    assert proc.stderr.strip() == NO_SUCH.format(f"{repo}:missing")


# --- inspect / history --------------------------------------------------------------------


def test_image_inspect_fields(docker_cli: DockerCLI, busybox_tar: Path, repo: str) -> None:
    ref = f"{repo}:inspect"
    image_id = _import(docker_cli, busybox_tar.read_bytes(), ref, 'CMD ["sh"]')
    image = _inspect(docker_cli, ref)
    assert image["Id"] == image_id
    assert image["RepoTags"] == [ref]
    assert image["RepoDigests"] == []
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", image["Created"]), image["Created"]
    assert image["Config"]["Cmd"] == ["sh"]
    assert image["RootFS"]["Type"] == "layers"
    assert image["RootFS"]["Layers"] == [diff_id(busybox_tar.read_bytes())]
    assert image["Size"] == layer_size(busybox_tar.read_bytes())
    assert image["Architecture"] in ("amd64", "arm64", "arm", "ppc64le", "s390x", "386", "riscv64")
    assert image["Os"] == "linux"
    assert docker_cli.ok("image", "inspect", "-f", "{{.Config.Cmd}}", ref).strip() == "[sh]"
    assert docker_cli.ok("image", "inspect", "-f", "{{.Id}}", image_id[7:19]).strip() == image_id
    assert docker_cli.ok("image", "inspect", "-f", "{{.Id}}", image_id).strip() == image_id
    # docker.io/library/ normalisation: the familiar name and the full name are the same image
    assert docker_cli.ok("image", "inspect", "-f", "{{.Id}}", f"docker.io/library/{ref}").strip() == image_id


def test_image_inspect_missing(docker_cli: DockerCLI, repo: str, cli_dialect: CliDialect) -> None:
    proc = docker_cli("image", "inspect", repo)
    assert proc.returncode == 1
    assert str(proc.stdout).strip() == "[]"
    # dockerd 20.10 prefixes "no such image: <name>: "; the tail is common to every release
    err = str(proc.stderr)
    if cli_dialect.legacy:
        assert err.strip() == f"Error: No such image: {repo}", err
    else:
        assert err.startswith("Error response from daemon: "), err
        assert err.strip().endswith(f"No such image: {repo}:latest"), err


def test_history(docker_cli: DockerCLI, repo: str) -> None:
    layer = tiny_layer()
    image_id = _import(docker_cli, layer, f"{repo}:h")
    header, rows = _table(docker_cli.ok("history", f"{repo}:h"))
    assert header == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert len(rows) == 1
    assert rows[0][0] == image_id[7:19]
    assert rows[0][-1] == "Imported from -"
    assert rows[0][-2] == "3.6kB"
    _, rows = _table(docker_cli.ok("history", "--no-trunc", f"{repo}:h"))
    assert rows[0][0] == image_id
    out = docker_cli.ok("history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", f"{repo}:h")
    assert _lines(out) == [f"{image_id[7:19]}||3.6kB|Imported from -"]
    assert docker_cli.ok("history", "-q", f"{repo}:h").strip() == image_id[7:19]


def test_history_missing(docker_cli: DockerCLI, repo: str) -> None:
    proc = docker_cli("history", repo)
    assert proc.returncode == 1
    assert proc.stderr.strip() == NO_SUCH.format(f"{repo}:latest")


# --- tag / rmi ----------------------------------------------------------------------------


def test_tag(docker_cli: DockerCLI, repo: str) -> None:
    image_id = _import(docker_cli, tiny_layer(), f"{repo}:src")
    docker_cli.ok("tag", f"{repo}:src", f"{repo}:dst")
    docker_cli.ok("tag", image_id, f"localhost:5000/{repo}/sub:t")
    docker_cli.ok("tag", image_id[7:19], repo)  # short ID, implicit :latest
    try:
        tags = _inspect(docker_cli, image_id)["RepoTags"]
        assert sorted(tags) == sorted(
            [f"{repo}:src", f"{repo}:dst", f"{repo}:latest", f"localhost:5000/{repo}/sub:t"]
        )
        # re-tagging an existing tag onto the same image is a no-op, not an error
        docker_cli.ok("tag", f"{repo}:src", f"{repo}:dst")
    finally:
        docker_cli("rmi", f"localhost:5000/{repo}/sub:t")


def test_tag_moves_to_new_image(docker_cli: DockerCLI, repo: str, tracker: ResourceTracker) -> None:
    old = tracker.image(_import(docker_cli, tiny_layer(), f"{repo}:moving"))
    new = _import(docker_cli, tiny_layer(), f"{repo}:other")
    docker_cli.ok("tag", f"{repo}:other", f"{repo}:moving")
    assert _inspect(docker_cli, f"{repo}:moving")["Id"] == new
    old_image = _inspect(docker_cli, old)
    assert old_image["RepoTags"] == []  # the old image is now dangling


def test_tag_missing_and_invalid(docker_cli: DockerCLI, repo: str, cli_dialect: CliDialect) -> None:
    proc = docker_cli("tag", f"{repo}:nope", f"{repo}:x")
    assert proc.returncode == 1
    assert proc.stderr.strip() == NO_SUCH.format(f"{repo}:nope")
    _import(docker_cli, tiny_layer(), f"{repo}:ok")
    # the CLI passes this name on; the daemon refuses it (dockerd 20.10 with a 500, newer with 400)
    proc = docker_cli("tag", f"{repo}:ok", f"UPPER/{repo}:t")
    assert proc.returncode == 1
    if cli_dialect.legacy:  # 20.10 parses the name itself
        assert "invalid reference format: repository name must be lowercase" in proc.stderr
    else:
        assert proc.stderr == (
            "Error response from daemon: invalid reference format: repository name must be lowercase\n"
        )
    assert docker_cli("image", "inspect", f"UPPER/{repo}:t").returncode == 1


def test_rmi_untag_then_delete(docker_cli: DockerCLI, repo: str) -> None:
    layer = tiny_layer()
    image_id = _import(docker_cli, layer, f"{repo}:a")
    docker_cli.ok("tag", f"{repo}:a", f"{repo}:b")
    out = docker_cli.ok("rmi", f"{repo}:a")
    assert _lines(out) == [f"Untagged: {repo}:a"]
    assert _inspect(docker_cli, image_id)["RepoTags"] == [f"{repo}:b"]
    lines = _lines(docker_cli.ok("rmi", f"{repo}:b"))
    assert lines[0] == f"Untagged: {repo}:b"
    assert lines[1] == f"Deleted: {image_id}"
    # the unique layer goes too: one more "Deleted:" line with its chain ID (= diff ID for a base layer)
    assert lines[2:] == [f"Deleted: {diff_id(layer)}"], lines
    assert docker_cli("image", "inspect", image_id).returncode == 1


def test_rmi_by_id_with_several_tags(docker_cli: DockerCLI, repo: str) -> None:
    image_id = _import(docker_cli, tiny_layer(), f"{repo}:a")
    docker_cli.ok("tag", f"{repo}:a", f"{repo}:b")
    docker_cli.ok("tag", f"{repo}:a", f"{repo}-x:c")
    short = image_id[7:19]
    proc = docker_cli("rmi", short)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"Error response from daemon: conflict: unable to delete {short} (must be forced)"
        " - image is referenced in multiple repositories"
    )
    out = _lines(docker_cli.ok("rmi", "-f", short))
    assert sorted(out[:3]) == [f"Untagged: {repo}-x:c", f"Untagged: {repo}:a", f"Untagged: {repo}:b"]
    assert out[3] == f"Deleted: {image_id}"
    assert docker_cli("image", "inspect", image_id).returncode == 1


def test_rmi_several_tags_of_one_repo_without_force(docker_cli: DockerCLI, repo: str) -> None:
    """Removing by tag untags only that tag; the last one deletes the image, no force needed."""
    image_id = _import(docker_cli, tiny_layer(), f"{repo}:a")
    docker_cli.ok("tag", f"{repo}:a", f"{repo}:b")
    out = _lines(docker_cli.ok("rmi", f"{repo}:a", f"{repo}:b"))
    assert out[:3] == [f"Untagged: {repo}:a", f"Untagged: {repo}:b", f"Deleted: {image_id}"]


def test_rmi_dangling_by_id(docker_cli: DockerCLI, tracker: ResourceTracker) -> None:
    image_id = tracker.image(_import(docker_cli, tiny_layer()))
    out = _lines(docker_cli.ok("rmi", image_id))
    assert out[0] == f"Deleted: {image_id}"


def test_rmi_missing(docker_cli: DockerCLI, repo: str, cli_dialect: CliDialect) -> None:
    proc = docker_cli("rmi", repo)
    assert proc.returncode == 1
    assert proc.stdout == ""
    missing = f"No such image: {repo}:latest"
    assert proc.stderr.strip() == cli_dialect.not_found(missing, "image", repo)
    proc = docker_cli("rmi", f"{repo}:v1")
    assert proc.stderr.strip() == cli_dialect.not_found(f"No such image: {repo}:v1", "image", f"{repo}:v1")
    # -f makes a missing image not an error (the message is still printed)
    proc = docker_cli("rmi", "-f", repo)
    assert proc.returncode == 0
    assert proc.stderr.strip() == cli_dialect.not_found(missing, "image", repo)


# --- prune --------------------------------------------------------------------------------


def test_image_prune_dangling(docker_cli: DockerCLI, repo: str, tracker: ResourceTracker) -> None:
    label = f"conformance.prune={uuid.uuid4().hex}"
    tagged = _import(docker_cli, tiny_layer(), f"{repo}:kept", f"LABEL {label}")
    dangling = tracker.image(_import(docker_cli, tiny_layer(), "", f"LABEL {label}"))
    out = docker_cli.ok("image", "prune", "-f", "--filter", f"label={label}")
    lines = _lines(out)
    assert lines[0] == "Deleted Images:"
    assert f"deleted: {dangling}" in lines
    assert not any(tagged in line for line in lines)
    assert re.match(r"^Total reclaimed space: 3\.6kB$", lines[-1]), out
    assert docker_cli("image", "inspect", dangling).returncode == 1
    assert _inspect(docker_cli, tagged)["Id"] == tagged
    # nothing left to prune
    assert docker_cli.ok("image", "prune", "-f", "--filter", f"label={label}").strip() == "Total reclaimed space: 0B"


def test_image_prune_all(docker_cli: DockerCLI, repo: str, tracker: ResourceTracker) -> None:
    label = f"conformance.prune={uuid.uuid4().hex}"
    tagged = _import(docker_cli, tiny_layer(), f"{repo}:gone", f"LABEL {label}")
    dangling = tracker.image(_import(docker_cli, tiny_layer(), "", f"LABEL {label}"))
    other = _import(docker_cli, tiny_layer(), f"{repo}:unlabelled")
    out = docker_cli.ok("image", "prune", "-a", "-f", "--filter", f"label={label}")
    lines = _lines(out)
    assert lines[0] == "Deleted Images:"
    assert f"untagged: {repo}:gone" in lines
    assert f"deleted: {tagged}" in lines
    assert f"deleted: {dangling}" in lines
    assert lines[-1] == "Total reclaimed space: 7.2kB", out
    assert docker_cli("image", "inspect", tagged).returncode == 1
    assert _inspect(docker_cli, other)["Id"] == other


# --- save / load --------------------------------------------------------------------------


def test_save_load_round_trip(docker_cli: DockerCLI, busybox_tar: Path, repo: str, tmp_path: Path) -> None:
    ref = f"{repo}:saved"
    image_id = _import(docker_cli, busybox_tar.read_bytes(), ref, 'CMD ["sh"]')
    archive = tmp_path / "x.tar"
    docker_cli.ok("save", "-o", str(archive), ref)
    saved = read_saved(archive.read_bytes())
    assert saved.config_ids == [image_id]
    assert saved.manifest[0]["RepoTags"] == [ref]
    assert len(saved.manifest[0]["Layers"]) == 1  # type: ignore[arg-type]
    assert saved.repositories is not None and list(saved.repositories) == [repo]

    docker_cli.ok("rmi", ref)
    assert docker_cli("image", "inspect", image_id).returncode == 1
    out = docker_cli.ok("load", "-i", str(archive))
    assert _lines(out)[-1] == f"Loaded image: {ref}"
    image = _inspect(docker_cli, ref)
    assert image["Id"] == image_id
    assert image["RootFS"]["Layers"] == [diff_id(busybox_tar.read_bytes())]
    assert image["Config"]["Cmd"] == ["sh"]
    # loading what is already there is fine and says the same
    assert _lines(docker_cli.ok("load", "-q", "-i", str(archive))) == [f"Loaded image: {ref}"]


def test_save_by_id_loads_untagged(docker_cli: DockerCLI, tracker: ResourceTracker, tmp_path: Path) -> None:
    image_id = tracker.image(_import(docker_cli, tiny_layer()))
    archive = tmp_path / "byid.tar"
    docker_cli.ok("save", "-o", str(archive), image_id)
    saved = read_saved(archive.read_bytes())
    assert saved.config_ids == [image_id]
    assert saved.manifest[0].get("RepoTags") in (None, [])
    docker_cli.ok("rmi", image_id)
    out = docker_cli.ok("load", "-i", str(archive))
    assert _lines(out)[-1] == f"Loaded image ID: {image_id}"
    assert _inspect(docker_cli, image_id)["RepoTags"] == []


def test_save_several_images(docker_cli: DockerCLI, repo: str, tmp_path: Path) -> None:
    a = _import(docker_cli, tiny_layer(), f"{repo}:a")
    b = _import(docker_cli, tiny_layer(), f"{repo}:b")
    archive = tmp_path / "two.tar"
    docker_cli.ok("save", "-o", str(archive), f"{repo}:a", f"{repo}:b")
    saved = read_saved(archive.read_bytes())
    assert sorted(saved.config_ids) == sorted([a, b])
    docker_cli.ok("rmi", f"{repo}:a", f"{repo}:b")
    out = _lines(docker_cli.ok("load", "-i", str(archive)))
    assert sorted(out) == [f"Loaded image: {repo}:a", f"Loaded image: {repo}:b"]
    assert _inspect(docker_cli, f"{repo}:a")["Id"] == a
    assert _inspect(docker_cli, f"{repo}:b")["Id"] == b


def test_save_load_over_pipes(docker_cli: DockerCLI, docker_binary: str, repo: str) -> None:
    ref = f"{repo}:piped"
    image_id = _import(docker_cli, tiny_layer(), ref, 'CMD ["sh"]')
    env = docker_cli.env()
    # docker save to a pipe (stdout is not a terminal) ...
    save = subprocess.run([docker_binary, "save", ref], capture_output=True, env=env, timeout=60)
    assert save.returncode == 0, save.stderr
    assert read_saved(save.stdout).config_ids == [image_id]
    docker_cli.ok("rmi", ref)
    # ... and docker load from a pipe, with the image gone in between
    load = subprocess.Popen([docker_binary, "load"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)  # fmt: skip
    out, err = load.communicate(save.stdout, timeout=60)
    assert load.returncode == 0, err
    assert _lines(out.decode())[-1] == f"Loaded image: {ref}"
    assert _inspect(docker_cli, ref)["Id"] == image_id
    # and both ends at once, through an OS pipe, as a user's shell does it
    docker_cli.ok("tag", ref, f"{repo}:second")
    shell = f"{docker_binary} save {repo}:second | {docker_binary} load"
    proc = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc.stdout)[-1] == f"Loaded image: {repo}:second"
    assert _inspect(docker_cli, f"{repo}:second")["Id"] == image_id


def test_load_from_stdin_redirect(docker_cli: DockerCLI, repo: str, tmp_path: Path) -> None:
    ref = f"{repo}:stdin"
    image_id = _import(docker_cli, tiny_layer(), ref)
    archive = tmp_path / "s.tar"
    docker_cli.ok("save", "-o", str(archive), ref)
    docker_cli.ok("rmi", ref)
    proc = docker_cli("load", input=archive.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert _inspect(docker_cli, ref)["Id"] == image_id


def test_save_missing(docker_cli: DockerCLI, repo: str, tmp_path: Path) -> None:
    proc = docker_cli("save", "-o", str(tmp_path / "m.tar"), repo)
    assert proc.returncode == 1
    # dockerd 20.10 names the image as given ("No such image: x"), newer releases may add ":latest"
    assert str(proc.stderr).startswith(NO_SUCH.format(repo)), proc.stderr


def test_load_garbage_fails(docker_cli: DockerCLI, raw: RawHTTP) -> None:
    """dockerd (20.10 and current moby alike) answers ``POST /images/load`` with 200 and reports
    a failure in the JSON stream, so the CLI prints it without "Error response from daemon":
    ``Error processing tar file(exit status 1): archive/tar: invalid tar header``."""
    garbage = b"this is not a tar archive at all" * 64
    proc = docker_cli("load", input=garbage)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert proc.stderr.strip(), "no error message"
    assert not proc.stderr.startswith(b"Error response from daemon: "), proc.stderr
    resp = raw.request("POST", "/images/load", body=garbage, headers={"Content-Type": "application/x-tar"})
    assert resp.status == 200, resp.describe()
    assert (resp.header("Content-Type") or "").startswith("application/json")
    messages = json_stream(resp.body)
    assert messages and messages[-1]["error"] and messages[-1]["errorDetail"]["message"], messages
    assert messages[-1]["error"] == messages[-1]["errorDetail"]["message"]
    assert docker_cli("version", "--format", "{{.Server.Version}}").returncode == 0
