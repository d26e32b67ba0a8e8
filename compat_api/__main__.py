"""``pydockerd`` / ``python -m compat_api``: the composition root of the daemon."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from compat_api.app import create_app
from compat_api.daemon.listeners import close_listeners, open_listeners
from compat_api.daemon.options import DaemonOptions, OptionsError, parse_options
from compat_api.daemon.sdnotify import notify
from runtime.config import DaemonConfig
from runtime.engine import Engine
from runtime.errors import Conflict, SystemError_
from runtime.linux.limits import raise_open_files_limit
from runtime.statefile import ensure_private_dir
from runtime.system.lock import DataRootLock

if TYPE_CHECKING:
    from dashboard.server import Dashboard

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
        default_cgroupns_mode=options.default_cgroupns_mode,
        cgroup_driver=options.cgroup_driver,
        init=options.init,
        init_path=options.init_path,
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


async def _start_dashboard(options: DaemonOptions) -> Dashboard:
    """The dashboard app, a client of this daemon's own socket (the first unix:// one);
    imported only when asked for."""
    from dashboard.server import ListenError, TLSFiles, start_dashboard

    assert options.dashboard is not None
    own = [h for h in options.hosts if h.startswith("unix://")] or [h for h in options.hosts if h.startswith("tcp://")]
    if not own:
        raise OptionsError("--dashboard needs the daemon to listen on a unix:// or tcp:// host")
    tls = None
    if options.tlsverify and options.tlscert and options.tlskey and options.tlscacert:
        tls = TLSFiles(cert=options.tlscert, key=options.tlskey, ca=options.tlscacert)
    try:
        dashboard = await start_dashboard(own[0], options.dashboard, options.exec_root, tls)
    except ListenError as exc:
        raise OptionsError(str(exc)) from None
    log.info("dashboard listening: open %s (token in %s)", dashboard.url, dashboard.token_file)
    return dashboard


async def serve(options: DaemonOptions) -> None:
    raise_open_files_limit()
    ensure_private_dir(options.data_root)
    lock = DataRootLock(options.data_root)
    lock.acquire()
    listeners = []
    runner: web.AppRunner | None = None
    engine: Engine | None = None
    dashboard: Dashboard | None = None
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
        if options.dashboard is not None:
            dashboard = await _start_dashboard(options)
        log.info("pydockerd ready (data root %s, exec root %s)", options.data_root, options.exec_root)
        notify("READY=1")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("shutting down")
        notify("STOPPING=1")
    finally:
        if dashboard is not None:
            await dashboard.stop()
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
    except (OptionsError, Conflict, SystemError_) as exc:
        print(f"pydockerd: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"pydockerd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
