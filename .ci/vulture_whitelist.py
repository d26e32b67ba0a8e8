"""Names vulture cannot see used (`.ci/run`: vulture ... --min-confidence 60).

Each entry says who uses the name. Nothing here is dead code: a name that nothing uses is
removed, not listed. A section whose reason stops being true goes with it.
"""
# ruff: noqa
# mypy: ignore-errors
_ = object()

# ---- wire shapes: TypedDict keys, written by handlers and read by clients -----------------
# builder/state.py (the image config's Healthcheck)
Test, Interval, Timeout, StartPeriod, StartInterval, Retries
# compat_api/routers/volumes/render.py
Size, RefCount, CreatedAt, Driver, Labels, Mountpoint, Name, Options, Scope, Volumes
Warnings, VolumesDeleted, SpaceReclaimed
# compat_api/wire/containers.py
Id, StatusCode, Running, Paused, Restarting, OOMKilled, Dead, Pid, ExitCode, StartedAt
FinishedAt, Type, Source, Destination, Mode, RW, Propagation, Names, ImageID, Ports, SizeRw
SizeRootFs, NetworkSettings, Mounts, arguments, CanRemove, ContainerID, DetachKeys, ID
OpenStderr, OpenStdin, OpenStdout
# compat_api/streams/jsonmessage.py (progressDetail)
hidecounts
# dashboard/forms.py (the create request the dashboard sends)
HostIp, HostPort, PortBindings, Binds, NetworkMode, Cmd, Env, Tty, ExposedPorts
# runtime/images/auth.py: AuthConfig fields are decoded from X-Registry-Auth by name
email

# ---- persisted records: written and read through dataclasses.fields (containers/codec) ----
# runtime/containers/model.py: HostConfig/Mount fields accepted from the API, kept and
# returned by inspect as dockerd does
create_mountpoint, read_only_non_recursive, read_only_force_recursive, consistency
blkio_weight_device, blkio_device_read_bps, blkio_device_write_bps, blkio_device_read_iops
blkio_device_write_iops, cpu_realtime_period, cpu_realtime_runtime, device_requests
kernel_memory, kernel_memory_tcp, cpu_percent, container_id_file, storage_opt, userns_mode
layer_id
# builder/parser.py: a Dockerfile node's last line (error positions, tests)
end_line
# compat_api/adjustments.py: each version adjustment's example (checked by the tests)
example

# ---- values named by the protocol, decoded from the wire by value --------------------------
# compat_api/streams/stdcopy.py: stdcopy stream types 0 and 3
STDIN, SYSTEMERR
# runtime/containers/state.py: `POST /containers/{id}/wait?condition=removed`
REMOVED

# ---- called by a framework ---------------------------------------------------------------
# asyncio.Protocol / DatagramProtocol callbacks (hijack.py, network/dns.py, network/portmap.py)
_.data_received, _.eof_received, _.pause_writing, _.resume_writing
_.connection_made, _.datagram_received, _.error_received
# importlib's meta path finder protocol (process/supervisor.py)
_.find_spec

# ---- seams and probes the unit tests use ---------------------------------------------------
# a test swaps the container service's network steps; RecordingSyscalls' stat helpers;
# the firewall's rule dump; IPAM's allocated set; a synchronous commit for deep images;
# the stdcopy decoder (FrameDecoder.feed) and the hijacked stream's half-close; whether a
# JSON-message stream ended in an error
_.set_network_steps, _.char_device, _.regular_file, _.dump, _.allocated, _.commit_sync
_.feed, _.close_write, _.failed

# ---- kept on purpose -----------------------------------------------------------------------
# LogsOptions.details: `docker logs --details` is accepted and ignored (docs/compat.md says so)
details
# CgroupStats.memory_usage/cpu_usage_ns: the sample's fields as read from the cgroup files;
# is_frozen: what the pause tests check; container_network_ids: what the network tests check
memory_usage, cpu_usage_ns, _.is_frozen, _.container_network_ids
