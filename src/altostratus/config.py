"""Settings of a running server (from `alto up` flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("~/.altostratus").expanduser()
DEFAULT_LOCATION = "local"


@dataclass
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    port: int = 8443
    database_url: str | None = None  # default: SQLite in the data dir
    location: str = DEFAULT_LOCATION
    controllers: bool = True  # False: API only (another node runs the controllers)
    token_lifetime: int = 3600
    operation_workers: int = 4
    operation_retention_days: float = 90.0  # finished operations are purged after this (arm/operation_retention.py)
    hypervisor: str = "sim"
    sim_boot_seconds: float = 0.0
    sim_fail_boot_marker: str | None = None
    libvirt_uris: tuple[str, ...] = ()  # libvirt hosts (default qemu:///system)
    libvirt_memory_cap_mb: int = 256  # sim failure injection: user data containing it fails to boot
    # automaticRepairsPolicy.gracePeriod's minimum (Azure: PT10M); operators lower it for drills and tests.
    repair_min_grace_seconds: float = 600.0
    upstream: str | None = None  # marketplace upstream to register on start (default: the demo catalogue)
    # The token endpoint's limits (arm/login_limits.py): hashed attempts per second and burst, per source
    # address and per client id, and the threads (and queue) that hash secrets. docs/identity.md explains them.
    login_rate_per_source: float = 2.0
    login_burst_per_source: int = 20
    login_rate_per_client: float = 1.0
    login_burst_per_client: int = 5
    login_hash_workers: int = 1
    # Fetches on a tenant's behalf (templateLink): private ranges, and hosts/addresses/CIDRs fetched whatever
    # their address (see arm/outbound.py; loopback, link-local and the host's own addresses are refused otherwise).
    outbound_allow_private: bool = False
    outbound_allow: tuple[str, ...] = ()
    # The web portals on the same endpoint (tenant at /, operator at /admin; src/altostratus/portal) and how long
    # a portal session may sit idle before the person signs in again.
    portal: bool = True
    portal_session_idle: int = 1800
    # Joining a running cloud on first start (docs/several-machines.md): the token `alto admin node join-token`
    # printed, and optionally the URL of the node to ask (the token names one).
    join_token: str | None = None
    join_url: str | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'altostratus.db'}"

    @property
    def arm_endpoint(self) -> str:
        host = "localhost" if self.host in ("0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"
