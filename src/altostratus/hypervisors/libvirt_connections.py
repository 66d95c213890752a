"""Connections to the libvirt hosts of a driver, and libvirt errors turned into ``DriverError``s.

A host is a libvirt URI. Its connection is opened on first use and reopened when it died (libvirtd restarted,
a remote host came back), so that one broken connection costs one retryable ``HostUnreachable`` rather than
every later call. Which errors count as connection trouble decides what the controller retries, so the
translation lives here, beside the connections it drops.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import libvirt

from altostratus.hypervisors.base import DriverError

__all__ = ["Connections", "error_text", "is_connection_error", "is_local", "lookup", "qemu_runs_as_other_user"]

# libvirt prints every error on stderr by default; we turn them into DriverErrors instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_CONNECTION_ERRORS = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_OPERATION_TIMEOUT,
}
_CONNECTION_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}


def error_text(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def is_connection_error(exc: libvirt.libvirtError) -> bool:
    """The connection failed (not the operation): a later identical call on a new connection may succeed."""
    return exc.get_error_code() in _CONNECTION_ERRORS or exc.get_error_domain() in _CONNECTION_DOMAINS


def is_local(uri: str) -> bool:
    """Whether the host's daemon runs on this machine (no remote hostname or transport other than unix), so
    that a bind test here says whether a port forward can listen there."""
    parts = urlsplit(uri)
    return not parts.hostname and "+" not in parts.scheme or parts.scheme.endswith("+unix")


def qemu_runs_as_other_user(uris: Sequence[str]) -> bool:
    """System daemons run QEMU as their own user (libvirt-qemu); session daemons as ours."""
    return any(urlsplit(uri).path.rstrip("/") != "/session" for uri in uris)


def lookup(conn: Any, name: str) -> Any | None:
    """The domain called ``name``, or None if the host has none (other errors raise)."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


class Connections:
    """One live connection per host URI, shared by the driver's threads (libvirt connections are)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: dict[str, Any] = {}

    def get(self, host: str) -> Any:
        """The host's connection, (re)opened if needed; ``HostUnreachable`` (retryable) if it cannot be."""
        with self._lock:
            conn = self._conns.get(host)
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except libvirt.libvirtError:
                    pass
                with contextlib.suppress(libvirt.libvirtError):
                    conn.close()
                del self._conns[host]
            try:
                conn = libvirt.open(host)
            except libvirt.libvirtError as exc:
                raise DriverError(
                    "HostUnreachable", f"cannot connect to {host}: {error_text(exc)}", retryable=True
                ) from exc
            self._conns[host] = conn
            return conn

    def drop(self, host: str) -> None:
        """Forget a broken connection: the next ``get`` opens a new one."""
        with self._lock:
            conn = self._conns.pop(host, None)
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    @contextlib.contextmanager
    def errors(self, host: str, what: str) -> Iterator[None]:
        """libvirt errors as DriverErrors: connection trouble is ``HostUnreachable`` (retryable, and the
        connection is dropped), a vanished domain ``InstanceNotFound``, anything else ``LibvirtError``."""
        try:
            yield
        except libvirt.libvirtError as exc:
            if is_connection_error(exc):
                self.drop(host)
                raise DriverError("HostUnreachable", f"{what} on {host}: {error_text(exc)}", retryable=True) from exc
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise DriverError("InstanceNotFound", f"{what} on {host}: the domain disappeared") from exc
            raise DriverError("LibvirtError", f"{what} on {host}: {error_text(exc)}") from exc
