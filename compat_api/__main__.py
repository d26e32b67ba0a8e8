"""``pydockerd`` / ``python -m compat_api``: the composition root of the daemon."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from compat_api.app import create_app
from compat_api.daemon.listeners import close_listeners, open_listeners
from compat_api.daemon.options import DaemonOptions, OptionsError, parse_options
from runtime.config import DaemonConfig
from runtime.engine import Engine
from runtime.errors import Conflict
from runtime.statefile import ensure_private_dir
from runtime.system.lock import DataRootLock

log = logging.getLogger("pydockerd")

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
               "error": logging.ERROR, "fatal": logging.CRITICAL}


def _engine_config(options: DaemonOptions) -> DaemonConfig:
    return DaemonConfig(
        data_root=options.data_root,
        exec_root=options.exec_root,
        bridge=options.bridge,
        bip=options.bip,
        ipv6=options.ipv6,
        fixed_cidr_v6=options.fixed_cidr_v6,
        cgroup_parent=options.cgroup_parent,
        debug=options.debug,
        experimental=options.experimental,
        labels=options.labels,
        insecure_registries=options.insecure_registries,
        registry_mirrors=options.registry_mirrors,
        hosts=options.hosts,
        live_restore=options.live_restore,
    )


def _write_pidfile(path: Path) -> None:
    if path.exists():
        try:
            other = int(path.read_text().strip() or "0")
        except ValueError:
            other = 0
        if other and other != os.getpid() and Path(f"/proc/{other}").exists():
            raise OptionsError(f"pid file found, ensure pydockerd is not running or delete {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}")


async def serve(options: DaemonOptions) -> None:
    ensure_private_dir(options.data_root)
    lock = DataRootLock(options.data_root)
    lock.acquire()
    listeners = []
    runner: web.AppRunner | None = None
    engine: Engine | None = None
    try:
        if options.pidfile is not None:
            _write_pidfile(options.pidfile)
        engine = await Engine.open(_engine_config(options))
        listeners = open_listeners(options)
        app = create_app(engine)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        for listener in listeners:
            site = web.SockSite(runner, listener.sock, ssl_context=listener.ssl_context)
            await site.start()
            log.info("API listen on %s", listener.address)
        log.info("pydockerd ready (data root %s, exec root %s)", options.data_root, options.exec_root)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("shutting down")
    finally:
        if runner is not None:
            await runner.cleanup()
        close_listeners(listeners)
        if engine is not None:
            await engine.close()
        if options.pidfile is not None:
            try:
                options.pidfile.unlink()
            except FileNotFoundError:
                pass
        lock.release()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = parse_options(sys.argv[1:] if argv is None else argv)
    except OptionsError as exc:
        print(f"pydockerd: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=_LOG_LEVELS[options.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if os.geteuid() != 0:
        print("pydockerd: needs to be started with root privileges", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(options))
    except (OptionsError, Conflict) as exc:
        print(f"pydockerd: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"pydockerd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
