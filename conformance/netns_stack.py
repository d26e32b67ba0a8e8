"""Runs inside a private network namespace (``unshare --net``): the dashboard, chromedriver and
so chromium see only their own loopback.

Why: Chrome aborts requests in flight whenever a network interface on its host appears or goes
(``net::ERR_NETWORK_CHANGED``), and every container start adds a veth. In here no interface but
``lo`` exists. The dashboard reaches the engine over its unix socket (not a network thing);
the test reaches chromedriver through the unix socket this script forwards to it.

    unshare --net python3 -m conformance.netns_stack ENGINE_HOST WORKDIR

prints ``READY <dashboard url>`` once everything listens, and stops all when stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
from pathlib import Path

DRIVER_PORT = 9515  # alone in this namespace: no other process can hold it


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", DRIVER_PORT)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


async def _wait_port(port: int, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


async def main(engine_host: str, workdir: Path, chromedriver: str) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    log = open(workdir / "dashboard.log", "wb")
    dashboard = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dashboard", "-H", engine_host, "--listen", "127.0.0.1:0",
        "--token-dir", str(workdir / "token"), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    driver = await asyncio.create_subprocess_exec(
        chromedriver, f"--port={DRIVER_PORT}", f"--log-path={workdir / 'chromedriver.log'}",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        url = ""
        for _ in range(300):
            m = re.search(r"open (https?://\S+#token=\S+)", (workdir / "dashboard.log").read_text(errors="replace"))
            if m:
                url = m.group(1)
                break
            if dashboard.returncode is not None:
                break
            await asyncio.sleep(0.1)
        if not url:
            print("FAILED dashboard did not start", flush=True)
            return 1
        await _wait_port(DRIVER_PORT)
        server = await asyncio.start_unix_server(_forward, path=str(workdir / "driver.sock"))
        print(f"READY {url}", flush=True)
        # until the test closes our stdin (or dies)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        server.close()
        return 0
    finally:
        for proc in (driver, dashboard):
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), 10)
                if proc.returncode is None:
                    proc.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3])))
