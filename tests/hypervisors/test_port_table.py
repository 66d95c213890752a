"""The port-forward table both drivers reserve host ports in (``hypervisors/port_table.py``), without a driver.

The drivers' own tests show the table at work through the interface (tests/hypervisors/test_sim_driver.py, the libvirt
driver's port-forward test with real QEMU); these pin the rules the table itself promises: slots per host and
address, all-or-nothing reservations, reimage moves that change nothing on a clash, and the hooks the libvirt
driver needs because its table is only a cache of the domains' metadata.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter

import pytest

from altostratus.hypervisors import DriverError
from altostratus.hypervisors.port_table import PortTable, port_is_free

A, B = "127.9.0.1", "127.9.0.2"


def _in_use(table: PortTable, host: str, key: str, forwards: list[tuple[str, int, int]]) -> DriverError:
    with pytest.raises(DriverError) as err:
        table.reserve(host, key, forwards)
    assert err.value.code == "PortInUse" and not err.value.retryable
    return err.value


def test_a_slot_is_host_address_and_port() -> None:
    table = PortTable()
    table.reserve("h0", "k1", [(A, 50000, 22)])
    table.reserve("h1", "k2", [(A, 50000, 22)])  # another host
    table.reserve("h0", "k3", [(B, 50000, 22)])  # another address (another load balancer)
    table.reserve("h0", "k1", [(A, 50000, 80)])  # the holder again: a no-op, whatever the guest port
    err = _in_use(table, "h0", "k4", [(A, 50000, 22)])
    assert err.message == f"{A}:50000 on h0 is forwarded to 'k1'"
    assert [table.holder("h0", A, 50000), table.holder("h1", A, 50000), table.holder("h0", B, 50000)] == [
        "k1",
        "k2",
        "k3",
    ]


def test_a_reservation_takes_every_slot_or_none() -> None:
    table = PortTable()
    table.reserve("h0", "k1", [(A, 50001, 22)])
    _in_use(table, "h0", "k2", [(A, 50000, 22), (A, 50001, 22), (A, 50002, 22)])
    assert table.holder("h0", A, 50000) is None and table.holder("h0", A, 50002) is None
    table.reserve("h0", "k2", [])  # nothing to take
    table.reserve("h0", "k2", [(A, 50000, 22), (A, 50002, 22)])
    assert table.holder("h0", A, 50002) == "k2"


def test_release_gives_back_only_the_callers_slots() -> None:
    table = PortTable()
    table.reserve("h0", "k1", [(A, 50000, 22)])
    table.release("h0", "k2", [(A, 50000, 22)])  # not k2's: stays
    assert table.holder("h0", A, 50000) == "k1"
    table.release("h0", "k1", [(A, 50000, 22), (A, 50009, 22)])
    assert table.holder("h0", A, 50000) is None
    table.reserve("h0", "k2", [(A, 50000, 22)])


def test_replace_keeps_the_old_forwards_on_a_clash_and_frees_them_after_a_move() -> None:
    table = PortTable()
    table.reserve("h0", "k1", [(A, 50000, 22), (A, 50001, 22)])
    table.reserve("h0", "k2", [(A, 50005, 22)])
    with pytest.raises(DriverError):
        table.replace("h0", "k1", [(A, 50000, 22), (A, 50001, 22)], [(A, 50000, 22), (A, 50005, 22)])
    assert table.holder("h0", A, 50000) == table.holder("h0", A, 50001) == "k1"  # nothing changed
    table.replace("h0", "k1", [(A, 50000, 22), (A, 50001, 22)], [(A, 50000, 22), (B, 50001, 22)])
    assert table.holder("h0", A, 50000) == "k1" and table.holder("h0", B, 50001) == "k1"
    assert table.holder("h0", A, 50001) is None


def test_claim_and_forget() -> None:
    """Loading stored state never moves a slot from its first holder; forget drops a key on every host."""
    table = PortTable()
    table.claim("h0", "k1", [(A, 50000, 22)])
    table.claim("h0", "k2", [(A, 50000, 22), (A, 50001, 22)])
    table.claim("h1", "k1", [(A, 50000, 22)])
    assert table.holder("h0", A, 50000) == "k1" and table.holder("h0", A, 50001) == "k2"
    table.forget("k1")
    assert table.holder("h0", A, 50000) is None and table.holder("h1", A, 50000) is None
    assert table.holder("h0", A, 50001) == "k2"


def test_holdings_are_read_once_per_host_before_its_first_reservation() -> None:
    reads: Counter[str] = Counter()

    def holdings(host: str) -> list[tuple[str, list[tuple[str, int, int]]]]:
        reads[host] += 1
        return [("old", [(A, 50000, 22)])] if host == "h0" else []

    table = PortTable(holdings=holdings)
    table.reserve("h0", "k1", [])  # no forwards: no need to know the host
    assert not reads
    _in_use(table, "h0", "k1", [(A, 50000, 22)])  # an instance of an earlier process holds it
    table.reserve("h0", "k1", [(A, 50001, 22)])
    table.reserve("h1", "k1", [(A, 50000, 22)])
    assert reads == {"h0": 1, "h1": 1}


def test_a_holder_that_is_gone_gives_way() -> None:
    """A cache of what the hypervisor says: a holder deleted through another driver object is dropped."""
    asked: list[str] = []
    alive = {"live"}

    def gone(key: str) -> bool:
        asked.append(key)
        return key not in alive

    table = PortTable(gone=gone)
    table.reserve("h0", "live", [(A, 50000, 22)])
    table.reserve("h0", "stale", [(A, 50001, 22), (A, 50002, 22)])
    table.reserve("h0", "k1", [(A, 50003, 22)])
    assert asked == []  # only asked on a clash
    table.reserve("h0", "k1", [(A, 50001, 22)])
    assert asked == ["stale"] and table.holder("h0", A, 50002) is None  # all of its slots went
    _in_use(table, "h0", "k2", [(A, 50000, 22)])
    assert asked == ["stale", "live"]


def test_slots_bound_by_another_program_are_refused_but_known_ones_are_not_asked() -> None:
    asked: list[tuple[str, str, int]] = []

    def bound_elsewhere(host: str, address: str, port: int) -> bool:
        asked.append((host, address, port))
        return port == 50009

    table = PortTable(bound_elsewhere=bound_elsewhere)
    table.reserve("h0", "k1", [(A, 50000, 22)])
    err = _in_use(table, "h0", "k2", [(A, 50001, 22), (A, 50009, 22)])
    assert err.message == f"{A}:50009 is in use by another program on this host"
    assert table.holder("h0", A, 50001) is None
    asked.clear()
    table.reserve("h0", "k1", [(A, 50000, 22), (A, 50002, 22)])  # k1's own slot is ours, not another program's
    assert asked == [("h0", A, 50002)]


def test_concurrent_reservations_of_one_slot_have_one_winner() -> None:
    table = PortTable()
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            table.reserve("h0", f"k{n}", [(A, 50000, 22), (B, 50000 + n, 22)])
            winners.append(f"k{n}")
        except DriverError:
            pass

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and table.holder("h0", A, 50000) == winners[0]
    assert [table.holder("h0", B, 50000 + n) for n in range(8)].count(None) == 7


def test_port_is_free_is_a_bind_test() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
    assert port_is_free("127.0.0.1", port)
