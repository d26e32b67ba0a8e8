from __future__ import annotations

import pytest

from runtime.images.reference import (
    InvalidReference,
    Reference,
    familiar_match,
    parse_any,
    parse_normalized_named,
    repo_tag_reference,
)

HEX = "a" * 64


@pytest.mark.parametrize(
    "text,full,familiar",
    [
        ("busybox", "docker.io/library/busybox", "busybox"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox", "busybox"),
        ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
        ("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
        ("user/app", "docker.io/user/app", "user/app"),
        ("localhost/app", "localhost/app", "localhost/app"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("Example.com/x", "Example.com/x", "Example.com/x"),
        ("[::1]:5000/img", "[::1]:5000/img", "[::1]:5000/img"),
        (f"busybox@sha256:{HEX}", f"docker.io/library/busybox@sha256:{HEX}", f"busybox@sha256:{HEX}"),
        ("library/a/b", "docker.io/library/a/b", "library/a/b"),
        ("a__b.c---d", "docker.io/library/a__b.c---d", "a__b.c---d"),
    ],
)
def test_normalisation(text: str, full: str, familiar: str) -> None:
    ref = parse_normalized_named(text)
    assert str(ref) == full
    assert ref.familiar == familiar


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "invalid reference format"),  # Parse("docker.io/library/") fails
        ("NoSuch", "invalid reference format: repository name (library/NoSuch) must be lowercase"),
        # checked against dockerd 20.10: `docker tag busybox UPPER/abc:t`
        ("UPPER/abc:t", "invalid reference format: repository name must be lowercase"),
        ("a@b", "invalid reference format"),
        ("a:b:c", "invalid reference format"),
        ("-a", "invalid reference format"),
        ("a/", "invalid reference format"),
        (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
        ("a:" + "t" * 129, "invalid reference format"),
        ("a" * 256, "repository name must not be more than 255 characters"),
        ("a@sha256:abc", "invalid reference format"),
        ("a@sha256:" + "a" * 40, "invalid checksum digest length"),
        ("a@md5:" + "a" * 32, "unsupported digest algorithm"),
    ],
)
def test_errors_carry_dockers_messages(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as err:
        parse_normalized_named(text)
    assert str(err.value) == message


def test_parse_any() -> None:
    assert parse_any(HEX) == "sha256:" + HEX
    assert parse_any("sha256:" + HEX) == "sha256:" + HEX
    assert parse_any("sha256:abc") == Reference("docker.io", "library/sha256", "abc")  # a name, as in Go


def test_repo_tag_reference() -> None:
    assert repo_tag_reference("", "x") is None
    assert str(repo_tag_reference("busybox", "")) == "docker.io/library/busybox:latest"
    assert str(repo_tag_reference("busybox", "v2")) == "docker.io/library/busybox:v2"
    with pytest.raises(InvalidReference, match="invalid tag format"):
        repo_tag_reference("busybox", "bad tag")
    with pytest.raises(InvalidReference, match="cannot import digest reference"):
        repo_tag_reference(f"busybox@sha256:{HEX}", "")


@pytest.mark.parametrize(
    "pattern,ref,expected",
    [
        ("busybox", "busybox:latest", True),  # matches the familiar name
        ("busybox:*", "busybox:latest", True),
        ("busy*", "busybox:1", True),
        ("*", "user/app:1", False),  # '*' does not cross '/'
        ("*/*", "user/app:1", True),
        ("busybox:l?test", "busybox:latest", True),
        ("busybox:[a-l]atest", "busybox:latest", True),
        ("busybox:[^l]atest", "busybox:latest", False),
        ("other", "busybox:latest", False),
    ],
)
def test_familiar_match(pattern: str, ref: str, expected: bool) -> None:
    assert familiar_match(pattern, parse_normalized_named(ref)) is expected
