"""The docker CLI's own floor for `docker logs`: a stub engine that answers with prebuilt frames.

Usage: python3 -m bench.cli_floor LOGFILE [--merge] [--timestamps]
Serves /_ping, /containers/<id>/json and /containers/<id>/logs on a temporary unix socket; the
logs body is built before the clock starts (one frame per json-file line, as dockerd sends, or
with ``--merge`` one frame per run of same-stream lines), so the time measured is the CLI's
request, demultiplexing and writes alone.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path


def build_frames(log: Path, merge: bool = False, timestamps: bool = False) -> bytes:
    """Frames for a json-file log, through the plain json decoder (the slow, obvious way)."""
    from runtime.logs.jsonfile import decode_entry
    from runtime.timefmt import rfc3339_nano_fixed

    parts: list[bytes] = []
    run_stream, run = 0, bytearray()
    with open(log, "rb") as f:
        for raw in f:
            message = decode_entry(raw)
            if message is None:
                continue
            stream = 2 if message.stream == "stderr" else 1
            data = message.line
            if timestamps:
                data = rfc3339_nano_fixed(message.time_ns).encode() + b" " + data
            if not merge:
                parts.append(bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data)
                continue
            if stream != run_stream and run:
                parts.append(bytes([run_stream, 0, 0, 0]) + len(run).to_bytes(4, "big") + run)
                run = bytearray()
            run_stream = stream
            run += data
    if run:
        parts.append(bytes([run_stream, 0, 0, 0]) + len(run).to_bytes(4, "big") + run)
    return b"".join(parts)


def _respond(conn: socket.socket, status: str, content_type: str, body: bytes,
             head_only: bool = False) -> None:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nApi-Version: 1.50\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    conn.sendall(head)
    if not head_only:
        conn.sendall(body)


_INSPECT = json.dumps({"Id": "f" * 64, "Name": "/floor", "Config": {"Tty": False},
                       "State": {"Running": False}, "HostConfig": {"LogConfig": {"Type": "json-file"}}}).encode()


def _serve_one(conn: socket.socket, body: bytes) -> None:
    reader = conn.makefile("rb")
    try:
        while True:
            line = reader.readline()
            if not line:
                return
            method, target = line.split()[0], line.split()[1].decode()
            while reader.readline() not in (b"\r\n", b""):
                pass
            if "/_ping" in target:
                _respond(conn, "200 OK", "text/plain", b"OK", method == b"HEAD")
            elif "/logs" in target:
                _respond(conn, "200 OK", "application/vnd.docker.multiplexed-stream", body)
            elif target.split("?")[0].endswith("/json"):
                _respond(conn, "200 OK", "application/json", _INSPECT)
            else:
                _respond(conn, "404 Not Found", "application/json", b'{"message":"no"}')
    finally:
        conn.close()


class FloorServer:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.dir = tempfile.mkdtemp(prefix="floor-", dir="/tmp")
        self.path = os.path.join(self.dir, "floor.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=_serve_one, args=(conn, self.body), daemon=True).start()

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


def time_cli_logs(host: str, *args: str) -> float:
    env = {**os.environ, "DOCKER_HOST": host}
    start = time.perf_counter()
    subprocess.run(["docker", "logs", *args], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("log", type=Path)
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--timestamps", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = FloorServer(build_frames(args.log, args.merge, args.timestamps))
    try:
        samples = sorted(time_cli_logs(server.host, "floor") for _ in range(args.runs))
        print(f"CLI floor ({'merged' if args.merge else 'per-line'} frames, "
              f"{len(server.body) / 1e6:.0f} MB): median {samples[len(samples) // 2]:.3f} s")
    finally:
        server.close()


if __name__ == "__main__":
    main()
