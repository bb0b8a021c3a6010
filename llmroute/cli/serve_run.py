"""Running `llmroute serve`: open the router once, listen, serve until SIGTERM or Ctrl-C,
drain what is in flight, close."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from llmroute.cli.boundary import guarded
from llmroute.cli.options import LogOptions
from llmroute.cli.report import Report
from llmroute.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    host: str
    port: int
    config: Path | None
    token: str | None
    state: str | None
    drain: int
    max_body: int
    verbose: int = 0
    log: LogOptions = field(default_factory=LogOptions)


def run_serve(options: ServeOptions) -> int:
    report = Report.for_stderr(verbose=options.verbose)
    return guarded(lambda: _serve(options), report)


def _serve(o: ServeOptions) -> int:
    import uvicorn

    from llmroute.environment import state_dir
    from llmroute.gateway.app import build_app
    from llmroute.gateway.discovery import Announcement, announce, announcement_path, withdraw
    from llmroute.router import Router
    from llmroute.setup import open_setup
    from llmroute.state import open_store, state_url

    if not (o.token or is_loopback(o.host)):
        raise UsageError(
            f"refusing to serve on {o.host} without a token: anyone who reaches it could spend "
            "your keys; give --token (or LLMROUTE_SERVER_TOKEN), or listen on 127.0.0.1"
        )
    setup = open_setup(o.config, store=open_store(o.state) if o.state else None)
    setup.store.upkeep_in_background()  # one long-running process serving every request
    router = Router(setup, log=o.log.policy("serve", content_default=False))
    listener = _listen(o.host, o.port)
    url = _url(o.host, listener.getsockname()[1])
    served = _config_path(setup.config.source)
    path = announcement_path(state_dir())
    state = o.state or state_url(setup.config, setup.env)

    def ready() -> None:  # uvicorn is up, its signal handlers in place: now say where we are
        announce(path, Announcement(url=url, pid=os.getpid(), config=served))
        sys.stderr.write(
            f"llmroute gateway on {url}/v1 · config {setup.config.source} · state {state} · "
            "Ctrl-C stops\n"
        )
        sys.stderr.flush()

    _configure_logging(o.verbose)
    app = build_app(router, token=o.token, max_body=o.max_body, ready=ready)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=o.drain,
            server_header=False,
            proxy_headers=False,  # no client addresses are used: not worth a layer per request
        )
    )
    # uvicorn drains on SIGTERM, then raises the signal again under the handler it found: with
    # Python's default one, that would kill the process before the `finally` below.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        server.run(sockets=[listener])
    finally:
        withdraw(path, os.getpid())
        listener.close()
    return 0


def _exit_quietly(signum: int, frame: object) -> None:
    """SIGTERM outside uvicorn's own handling (once it has drained): an orderly exit 0."""
    raise SystemExit(0)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror}); is another gateway running? "
            "pick another --port"
        ) from None
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _config_path(source: str) -> str | None:
    path = Path(source)
    return str(path.resolve()) if path.is_file() else None


def _configure_logging(verbose: int) -> None:
    """One access line per request always; attempts with -v; uvicorn's own errors always."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    access = logging.getLogger("llmroute.access")
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    access.propagate = False
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(handler)
    uvicorn_errors.setLevel(logging.INFO if verbose else logging.WARNING)
