"""Per-version behaviour in one place: what the API does differently for older clients.

Handlers parse requests and render responses in the newest API version's shape and pass
them through ``adjust_request`` / ``adjust_response`` with the client's version. Every
difference is one row of ``ADJUSTMENTS`` (moby's ``api/docs/version-history.md`` and the
``versions.LessThan`` checks in its routers): the operation (the spec's operationId), the
side, the version *below* which it applies, what changes, and an example body before and
after, from which the boundary tests check each row on both sides of its version.
``docs/compat.md`` lists the rows (``doc_rows``; tests/compat_api/test_adjustments.py keeps
the two in step).

Response adjustments may need values the newest shape no longer carries (image inspect's
``ContainerConfig`` before 1.45); the handler passes them as ``legacy`` values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from compat_api.versions import APIVersion

Body = dict[str, Any]
Side = Literal["request", "response"]
ApplyFn = Callable[[Body, Mapping[str, Any]], None]

ZERO_TIME = "0001-01-01T00:00:00Z"
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One version difference: ``apply`` changes a body of the newest shape into what a
    client older than ``below`` gets (response) or what dockerd reads from it (request)."""

    operation: str
    side: Side
    below: APIVersion
    change: str
    apply: ApplyFn
    example: Body
    expected: Body
    legacy: Mapping[str, Any] = field(default_factory=dict)


def _insert_after(body: Body, after: str, key: str, value: Any) -> None:
    """Put ``key`` right after ``after`` (dockerd's field order), or at the end."""
    items = list(body.items())
    body.clear()
    placed = False
    for k, v in items:
        if k == key:
            continue
        body[k] = v
        if k == after:
            body[key] = value
            placed = True
    if not placed:
        body[key] = value


def _host_config(body: Body) -> Body:
    host = body.get("HostConfig")
    return host if isinstance(host, dict) else {}


# --- the adjustments ------------------------------------------------------------------------


def _drop_host_console_size(body: Body, _: Mapping[str, Any]) -> None:
    _host_config(body).pop("ConsoleSize", None)


def _drop_host_annotations(body: Body, _: Mapping[str, Any]) -> None:
    _host_config(body).pop("Annotations", None)


def _drop_healthcheck_start_interval(body: Body, _: Mapping[str, Any]) -> None:
    health = body.get("Healthcheck")
    if isinstance(health, dict):
        health.pop("StartInterval", None)


def _drop_console_size(body: Body, _: Mapping[str, Any]) -> None:
    body.pop("ConsoleSize", None)


def _dropping(*keys: str) -> ApplyFn:
    """A request adjustment that ignores these fields (query parameters or body keys)."""

    def drop(body: Body, _: Mapping[str, Any]) -> None:
        for key in keys:
            body.pop(key, None)

    return drop


def _untagged_placeholders(body: Body, _: Mapping[str, Any]) -> None:
    if not body.get("RepoTags") and not body.get("RepoDigests"):
        body["RepoTags"], body["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
    else:
        body["RepoTags"] = body.get("RepoTags") or None
        body["RepoDigests"] = body.get("RepoDigests") or None


def _virtual_size(body: Body, _: Mapping[str, Any]) -> None:
    _insert_after(body, "Size", "VirtualSize", body.get("Size", 0))


def _created_always(body: Body, _: Mapping[str, Any]) -> None:
    if not body.get("Created"):
        _insert_after(body, "Comment", "Created", ZERO_TIME)


def _container_and_config(body: Body, legacy: Mapping[str, Any]) -> None:
    after = "Created" if "Created" in body else "Comment"
    _insert_after(body, after, "Container", legacy.get("Container", ""))
    _insert_after(body, "Container", "ContainerConfig", legacy.get("ContainerConfig"))


def _full_config(body: Body, legacy: Mapping[str, Any]) -> None:
    if "FullConfig" in legacy and "Config" in body:
        body["Config"] = legacy["FullConfig"]


def _runtimes_path_only(body: Body, _: Mapping[str, Any]) -> None:
    runtimes = body.get("Runtimes") or {}
    body["Runtimes"] = {name: {"path": rt.get("path", "")} for name, rt in runtimes.items()}


def _expected_commits(body: Body, _: Mapping[str, Any]) -> None:
    for key in ("ContainerdCommit", "RuncCommit", "InitCommit"):
        if isinstance(body.get(key), dict):
            body[key]["Expected"] = ""


def _no_firewall_backend(body: Body, _: Mapping[str, Any]) -> None:
    body.pop("FirewallBackend", None)


def _bridge_nf(body: Body, _: Mapping[str, Any]) -> None:
    body["BridgeNfIptables"] = False
    body["BridgeNfIp6tables"] = False


def _nondistributable(body: Body, _: Mapping[str, Any]) -> None:
    registry = body.get("RegistryConfig")
    if isinstance(registry, dict):
        registry["AllowNondistributableArtifactsCIDRs"] = None
        registry["AllowNondistributableArtifactsHostnames"] = None


def _raw_stream(body: Body, _: Mapping[str, Any]) -> None:
    body["Content-Type"] = RAW_STREAM


def _prune_all_volumes(body: Body, _: Mapping[str, Any]) -> None:
    filters = body.setdefault("filters", {})
    if isinstance(filters, dict):
        filters["all"] = ["true"]


def _legacy_image_filter(body: Body, _: Mapping[str, Any]) -> None:
    legacy = body.pop("filter", "")
    if legacy and isinstance(body.setdefault("filters", {}), dict):
        body["filters"]["reference"] = [legacy]


def _no_summary_annotations(body: Body, _: Mapping[str, Any]) -> None:
    host = body.get("HostConfig")
    if isinstance(host, dict):
        host.pop("Annotations", None)


V = APIVersion

ADJUSTMENTS: tuple[Adjustment, ...] = (
    # -- requests
    Adjustment("ContainerCreate", "request", V(1, 42), "`HostConfig.ConsoleSize` ignored",
               _drop_host_console_size, {"HostConfig": {"ConsoleSize": [24, 80]}}, {"HostConfig": {}}),
    Adjustment("ContainerCreate", "request", V(1, 43), "`HostConfig.Annotations` ignored",
               _drop_host_annotations, {"HostConfig": {"Annotations": {"a": "b"}}}, {"HostConfig": {}}),
    Adjustment("ContainerCreate", "request", V(1, 44), "`Healthcheck.StartInterval` ignored",
               _drop_healthcheck_start_interval,
               {"Healthcheck": {"Test": ["NONE"], "StartInterval": 5}}, {"Healthcheck": {"Test": ["NONE"]}}),
    Adjustment("ContainerExec", "request", V(1, 42), "`ConsoleSize` ignored",
               _drop_console_size, {"Cmd": ["sh"], "ConsoleSize": [24, 80]}, {"Cmd": ["sh"]}),
    Adjustment("ExecStart", "request", V(1, 42), "`ConsoleSize` ignored",
               _drop_console_size, {"Tty": True, "ConsoleSize": [24, 80]}, {"Tty": True}),
    Adjustment("ContainerStop", "request", V(1, 42), "`signal` ignored",
               _dropping("signal"), {"signal": "SIGINT", "t": "3"}, {"t": "3"}),
    Adjustment("ContainerRestart", "request", V(1, 42), "`signal` ignored",
               _dropping("signal"), {"signal": "SIGINT", "t": "3"}, {"t": "3"}),
    Adjustment("ContainerWait", "request", V(1, 30), "`condition` ignored (waits for not-running)",
               _dropping("condition"), {"condition": "next-exit"}, {}),
    Adjustment("ImageBuild", "request", V(1, 32), "`platform` ignored",
               _dropping("platform"), {"platform": "linux/amd64"}, {}),
    Adjustment("ImageBuild", "request", V(1, 40), "`outputs` ignored (not validated)",
               _dropping("outputs"), {"outputs": "[]"}, {}),
    Adjustment("ImageList", "request", V(1, 41), "the legacy `filter` parameter is a `reference` filter",
               _legacy_image_filter, {"filter": "busybox", "filters": {}}, {"filters": {"reference": ["busybox"]}}),
    Adjustment("ImageList", "request", V(1, 42), "`shared-size` ignored",
               _dropping("shared-size"), {"shared-size": True}, {}),
    Adjustment("VolumeCreate", "request", V(1, 42), "`ClusterVolumeSpec` ignored (no swarm error)",
               _dropping("ClusterVolumeSpec"), {"Name": "v", "ClusterVolumeSpec": {}}, {"Name": "v"}),
    Adjustment("VolumePrune", "request", V(1, 42), "named volumes are pruned too (`all=true` implied)",
               _prune_all_volumes, {"filters": {"label": ["a"]}}, {"filters": {"label": ["a"], "all": ["true"]}}),
    Adjustment("SystemDataUsage", "request", V(1, 42), "`type` ignored (everything is reported)",
               _dropping("type"), {"type": ["image"]}, {}),
    # -- responses
    Adjustment("ContainerAttach", "response", V(1, 42), "`Content-Type` is `application/vnd.docker.raw-stream` "
               "for multiplexed (non-TTY) streams too", _raw_stream,
               {"Content-Type": MULTIPLEXED_STREAM}, {"Content-Type": RAW_STREAM}),
    Adjustment("ContainerLogs", "response", V(1, 42), "`Content-Type` is `application/vnd.docker.raw-stream` "
               "for multiplexed (non-TTY) streams too", _raw_stream,
               {"Content-Type": MULTIPLEXED_STREAM}, {"Content-Type": RAW_STREAM}),
    Adjustment("ExecStart", "response", V(1, 42), "`Content-Type` is `application/vnd.docker.raw-stream` "
               "for multiplexed (non-TTY) streams too", _raw_stream,
               {"Content-Type": MULTIPLEXED_STREAM}, {"Content-Type": RAW_STREAM}),
    Adjustment("ContainerList", "response", V(1, 46), "no `HostConfig.Annotations`",
               _no_summary_annotations, {"HostConfig": {"NetworkMode": "none", "Annotations": {"a": "b"}}},
               {"HostConfig": {"NetworkMode": "none"}}),
    Adjustment("ImageList", "response", V(1, 43),
               "untagged images: `RepoTags` `[\"<none>:<none>\"]`, `RepoDigests` `[\"<none>@<none>\"]`; "
               "empty lists are `null`",
               _untagged_placeholders, {"RepoDigests": [], "RepoTags": []},
               {"RepoDigests": ["<none>@<none>"], "RepoTags": ["<none>:<none>"]}),
    Adjustment("ImageList", "response", V(1, 44), "`VirtualSize` (= `Size`)",
               _virtual_size, {"Size": 7}, {"Size": 7, "VirtualSize": 7}),
    Adjustment("ImageInspect", "response", V(1, 44), "`Created` always present (zero time when unknown)",
               _created_always, {"Comment": ""}, {"Comment": "", "Created": ZERO_TIME}),
    Adjustment("ImageInspect", "response", V(1, 44), "`VirtualSize` (= `Size`)",
               _virtual_size, {"Size": 7, "GraphDriver": {}}, {"Size": 7, "VirtualSize": 7, "GraphDriver": {}}),
    Adjustment("ImageInspect", "response", V(1, 45), "`Container` and `ContainerConfig`",
               _container_and_config, {"Comment": "", "Author": ""},
               {"Comment": "", "Container": "c1", "ContainerConfig": {"Cmd": ["sh"]}, "Author": ""},
               legacy={"Container": "c1", "ContainerConfig": {"Cmd": ["sh"]}}),
    Adjustment("ImageInspect", "response", V(1, 50),
               "`Config` is the full container config (every field, empty ones too) instead of the OCI image config",
               _full_config, {"Config": {"Cmd": ["sh"]}}, {"Config": {"Cmd": ["sh"], "Env": None}},
               legacy={"FullConfig": {"Cmd": ["sh"], "Env": None}}),
    Adjustment("SystemInfo", "response", V(1, 44), "`Runtimes` entries have `path` only",
               _runtimes_path_only, {"Runtimes": {"r": {"path": "p", "status": {}}}},
               {"Runtimes": {"r": {"path": "p"}}}),
    Adjustment("SystemInfo", "response", V(1, 47),
               "`RegistryConfig.AllowNondistributableArtifactsCIDRs`/`...Hostnames` (`null`)",
               _nondistributable, {"RegistryConfig": {}},
               {"RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None,
                                   "AllowNondistributableArtifactsHostnames": None}}),
    Adjustment("SystemInfo", "response", V(1, 49), "`Expected` in `ContainerdCommit`, `RuncCommit`, `InitCommit`",
               _expected_commits, {"ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""}},
               {"ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
                "InitCommit": {"ID": "", "Expected": ""}}),
    Adjustment("SystemInfo", "response", V(1, 49), "no `FirewallBackend`",
               _no_firewall_backend, {"FirewallBackend": {"Driver": "iptables"}}, {}),
    Adjustment("SystemInfo", "response", V(1, 50), "`BridgeNfIptables`, `BridgeNfIp6tables` (`false`)",
               _bridge_nf, {}, {"BridgeNfIptables": False, "BridgeNfIp6tables": False}),
)


def _adjust(side: Side, operation: str, version: APIVersion, body: Body, legacy: Mapping[str, Any]) -> Body:
    for row in ADJUSTMENTS:
        if row.operation == operation and row.side == side and version < row.below:
            row.apply(body, legacy)
    return body


def adjust_request(operation: str, version: APIVersion, body: Body) -> Body:
    """The request ``body`` (newest shape) as dockerd reads it from a client of ``version``;
    changed in place and returned."""
    return _adjust("request", operation, version, body, {})


def adjust_response(operation: str, version: APIVersion, body: Body, legacy: Mapping[str, Any] | None = None) -> Body:
    """The response ``body`` (newest shape) as a client of ``version`` gets it; changed in
    place and returned. ``legacy``: values only older shapes carry."""
    return _adjust("response", operation, version, body, legacy or {})


def doc_rows() -> list[str]:
    """The rows of docs/compat.md's per-version table, in table order."""
    return [f"| < {row.below} | {row.operation} | {row.side} | {row.change} |" for row in ADJUSTMENTS]


__all__ = ["ADJUSTMENTS", "Adjustment", "adjust_request", "adjust_response", "doc_rows"]
