"""Container and exec JSON shapes (v1.50 spec names). Only what handlers build by hand;
the large Config/HostConfig objects are rendered generically by ``convert.containers``."""

from __future__ import annotations

from typing import Any, TypedDict


class ContainerCreateResponse(TypedDict):
    Id: str
    Warnings: list[str]


class WaitError(TypedDict):
    Message: str


class ContainerWaitResponse(TypedDict):
    StatusCode: int
    Error: WaitError | None


class ContainerState(TypedDict):
    Status: str
    Running: bool
    Paused: bool
    Restarting: bool
    OOMKilled: bool
    Dead: bool
    Pid: int
    ExitCode: int
    Error: str
    StartedAt: str
    FinishedAt: str


class MountPoint(TypedDict):
    Type: str
    Source: str
    Destination: str
    Mode: str
    RW: bool
    Propagation: str


class ContainerSummary(TypedDict, total=False):
    Id: str
    Names: list[str]
    Image: str
    ImageID: str
    Command: str
    Created: int
    Ports: list[dict[str, Any]]
    SizeRw: int
    SizeRootFs: int
    Labels: dict[str, str]
    State: str
    Status: str
    HostConfig: dict[str, Any]
    NetworkSettings: dict[str, Any]
    Mounts: list[MountPoint]


class ProcessConfig(TypedDict):
    arguments: list[str]
    entrypoint: str
    privileged: bool
    tty: bool
    user: str


class ExecInspectResponse(TypedDict):
    CanRemove: bool
    ContainerID: str
    DetachKeys: str
    ExitCode: int | None
    ID: str
    OpenStderr: bool
    OpenStdin: bool
    OpenStdout: bool
    ProcessConfig: ProcessConfig
    Running: bool
    Pid: int


class IdResponse(TypedDict):
    Id: str


__all__ = ["ContainerCreateResponse", "WaitError", "ContainerWaitResponse", "ContainerState",
           "MountPoint", "ContainerSummary", "ProcessConfig", "ExecInspectResponse",
           "IdResponse"]
