"""``alto up``: serve the API over HTTPS with the embedded defaults."""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from rich.console import Console

from altostratus.app import build_app, build_services
from altostratus.arm import access_log
from altostratus.bootstrap import SharedDataDir, join_cloud, make_data_dir_private
from altostratus.config import Settings
from altostratus.join import JoinError
from altostratus.pki import ensure_server_cert


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, so the process dies "by signal";
    an operator's stop is a normal end, so we exit 0 once everything is drained and closed.

    ``on_started`` runs once uvicorn accepts connections, so the banner never announces a server that is not up.
    """

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            freeze_startup_objects()
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def freeze_startup_objects() -> None:
    """Moves every object alive once the server is up (modules, SQLAlchemy's tables and mappers, routes, the
    migrations' leftovers: ~180,000) out of the garbage collector's reach for good.

    Why: Python's oldest-generation collection walks every tracked object while holding the GIL, so the whole
    process stops. Under 20 clients that was a 40-100 ms pause about every 10 s, each one delaying every request
    in flight: that, not the writer lane, was the write p99 of bench/concurrency.py. What startup built lives as
    long as the process anyway; the collector still looks after everything made later (requests' objects, caches).
    Python's documentation recommends this for long-running servers (``gc.freeze``)."""
    gc.collect()  # what startup left as garbage goes now, not into the frozen generation
    gc.freeze()


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    access_log.install(sys.stderr)  # the same lines, batched (arm/access_log.py)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else is set up: a port in use is then one clear line and
    exit code 1 (SystemExit with a message), with no database, certificates or controllers started for a
    server that cannot run."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise SystemExit(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts skip TIME_WAIT
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            why = "the address is already in use (another `alto up`?); stop that server or pass another --port"
        else:
            why = exc.strerror or str(exc)
        raise SystemExit(f"Cannot listen on {host}:{port}: {why}.") from exc
    sock.set_inheritable(True)
    return sock


def portal_users(credentials: Path) -> str:
    """The first start's user names, from credentials.json (never their passwords: those stay in the file)."""
    try:
        users = json.loads(credentials.read_text()).get("users", {})
    except (OSError, ValueError):
        return "(see credentials.json)"
    return ", ".join(f"{u['name']} ({key})" for key, u in users.items()) or "(no users yet)"


def az_lines(arm_endpoint: str, credentials: Path) -> list[str]:
    """The three commands that connect the real ``az`` to this cloud, as a tenant: register it by its ARM endpoint
    (the CLI reads the rest from /metadata/endpoints; 2.66 adds Azure Stack's profile), select it, sign in as the
    default tenant's principal. The secret is read from credentials.json when run, never printed; ``-p=`` because a
    secret may begin with "-", which the CLI's argument parser would take for an option."""
    secret = f'python3 -c \'import json; print(json.load(open("{credentials}"))["tenant"]["clientSecret"])\''
    try:
        creds = json.loads(credentials.read_text())
        client_id, tenant_id = creds["tenant"]["clientId"], creds["tenantId"]
    except (OSError, ValueError, KeyError):
        client_id, tenant_id = "<tenant clientId>", "<tenantId>"
    return [
        f"az cloud register -n altostratus --endpoint-resource-manager {arm_endpoint}"
        "   # azure-cli 2.66: add --profile 2020-09-01-hybrid",
        "az cloud set -n altostratus",
        f'az login --service-principal -u {client_id} -p="$({secret})" --tenant {tenant_id}',
    ]


def serve(settings: Settings, log_level: str = "info") -> None:
    sock = bind(settings.host, settings.port)
    configure_logging(log_level)
    console = Console(stderr=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        make_data_dir_private(settings)  # before any secret in it is read or written
    except SharedDataDir as exc:
        console.print(str(exc), style="bold red", highlight=False, markup=False, soft_wrap=True)
        raise SystemExit(2) from None
    try:
        joined = join_cloud(settings)  # a further node: the cloud's CA, key and database URL, over the API
    except JoinError as exc:
        console.print(f"Could not join: {exc}", style="bold red", highlight=False, markup=False, soft_wrap=True)
        raise SystemExit(2) from None
    if joined:
        console.print(joined, highlight=False, markup=False)
    cert, key = ensure_server_cert(settings.data_dir, [settings.host])
    services = build_services(settings)
    app = build_app(services)
    console = Console(stderr=True)

    def banner() -> None:
        creds = settings.data_dir / "credentials.json"
        console.print(f"[bold]Altostratus[/bold] serving the ARM API at [cyan]{settings.arm_endpoint}[/cyan]")
        console.print(f"  data dir     {settings.data_dir}")
        console.print(f"  database     {services.db.engine.url.render_as_string(hide_password=True)}")
        console.print(f"  credentials  {creds}  (operator + default tenant principals)")
        console.print(f"  CA           {settings.data_dir / 'ca.pem'}")
        console.print(f"  controllers  {'on' if settings.controllers else 'off (API only)'}")
        console.print(f"  point clients at it:  export REQUESTS_CA_BUNDLE={settings.data_dir / 'ca.pem'}")
        if settings.portal:
            console.print(f"  portal       {settings.arm_endpoint}/  (operator: {settings.arm_endpoint}/admin)")
            console.print(f"  sign in as   {portal_users(creds)}  (passwords in {creds})")
        console.print("  the Azure CLI (docs/azure-cli.md):", highlight=False)
        for line in az_lines(settings.arm_endpoint, creds):
            console.print(f"    {line}", markup=False, highlight=False, soft_wrap=True)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    # On SIGINT/SIGTERM: stop accepting, drain requests, stop the controllers (lifespan shutdown).
    with sock:
        _Server(config, on_started=banner).run(sockets=[sock])
    access_log.flush()
    console.print("Altostratus stopped cleanly.")
