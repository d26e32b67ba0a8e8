"""Image wire shapes per requested API version (swagger ``ImageSummary``,
``ImageInspect``, ``HistoryResponseItem``; behaviour table in api-notes §2.9)."""

from __future__ import annotations

from typing import Any

from compat_api.adjustments import adjust_response
from compat_api.versions import APIVersion
from runtime.images.config import normalize_runtime_config
from runtime.images.model import HistoryItem, Image, ImageSummary

ZERO_TIME = "0001-01-01T00:00:00Z"

# ocispec.ImageConfig + Docker's extensions, in dockerd's field order (all omitempty)
_OCI_CONFIG_FIELDS = (
    "User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
    "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell",
)


def summary(item: ImageSummary, version: APIVersion) -> dict[str, Any]:
    image = item.image
    labels = dict(image.labels) if image.labels else None
    body: dict[str, Any] = {
        "Containers": item.containers,
        "Created": image.created_ns // 1_000_000_000,
        "Id": image.id,
        "Labels": labels,
        "ParentId": image.parent,
        "RepoDigests": list(image.repo_digests),
        "RepoTags": list(image.repo_tags),
        "SharedSize": item.shared_size,
        "Size": image.size,
    }
    return adjust_response("ImageList", version, body)


def _oci_config(runtime: Any) -> dict[str, Any]:
    runtime = runtime or {}
    out: dict[str, Any] = {}
    for key in _OCI_CONFIG_FIELDS:
        value = runtime.get(key)
        if value in (None, "", [], {}, False):
            continue
        out[key] = value
    return out


def inspect(image: Image, graph_driver: dict[str, Any], version: APIVersion) -> dict[str, Any]:
    cfg = image.config
    comment = cfg.get("comment") or ""
    history = image.history
    if not comment and history:
        comment = history[-1].get("comment") or ""
    created = image.created
    body: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": image.parent,
        "Comment": comment,
    }
    if created:
        body["Created"] = created
    body["DockerVersion"] = cfg.get("docker_version") or ""
    body["Author"] = cfg.get("author") or ""
    body["Config"] = _oci_config(image.runtime_config)
    body["Architecture"] = cfg.get("architecture") or ""
    if cfg.get("variant"):
        body["Variant"] = cfg["variant"]
    body["Os"] = cfg.get("os") or "linux"
    if cfg.get("os.version"):
        body["OsVersion"] = cfg["os.version"]
    body["Size"] = image.size
    body["GraphDriver"] = graph_driver
    rootfs: dict[str, Any] = {"Type": (cfg.get("rootfs") or {}).get("type") or "layers"}
    if image.diff_ids:
        rootfs["Layers"] = image.diff_ids
    body["RootFS"] = rootfs
    body["Metadata"] = {"LastTagTime": image.last_tag_time or ZERO_TIME}
    legacy = {
        "Container": cfg.get("container") or "",
        "ContainerConfig": normalize_runtime_config(cfg.get("container_config")),
        "FullConfig": normalize_runtime_config(image.runtime_config),
    }
    return adjust_response("ImageInspect", version, body, legacy)


def history_item(item: HistoryItem) -> dict[str, Any]:
    return {
        "Comment": item.comment,
        "Created": item.created,
        "CreatedBy": item.created_by,
        "Id": item.id,
        "Size": item.size,
        "Tags": list(item.tags) or None,
    }
