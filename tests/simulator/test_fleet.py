"""The fleet model: reproducible from a seed, valid ODS codes and host names, loopback addresses."""

from __future__ import annotations

import collections
import ipaddress

import pytest

from inventory.hostnames import NETBIOS_MAX, normalise_hostname
from inventory.org_codes import is_code
from simulator.behaviour import Fault
from simulator.fleet import FleetOptions, addresses, build_fleet
from simulator.profiles import PROFILES


def _snapshot(options: FleetOptions) -> list[tuple[object, ...]]:
    fleet = build_fleet(options)
    return [
        (
            h.hostname,
            h.address,
            h.practice,
            h.profile.name,
            h.fault,
            h.transport,
            h.machine,
            h.timing(),
            h.run_script("# cmscan-probe/1", {"Patterns": ["NHS *"]}).output,
        )
        for h in fleet
    ]


def test_the_same_seed_gives_the_same_fleet() -> None:
    options = FleetOptions(hosts=300, seed=42, fault_rate=0.2, transport="mixed")
    assert _snapshot(options) == _snapshot(options)
    other = FleetOptions(hosts=300, seed=43, fault_rate=0.2, transport="mixed")
    assert _snapshot(options) != _snapshot(other)


def test_organisations_have_ods_shapes_and_names() -> None:
    fleet = build_fleet(FleetOptions(hosts=1500, seed=7))
    assert len(fleet.icbs) >= 2
    assert len(fleet.ccgs) > len(fleet.icbs)
    assert all(
        is_code("icb", c) and n.startswith("NHS ")
        for c, n in ((i.code, i.name) for i in fleet.icbs.values())
    )
    assert all(
        is_code("ccg", c.code) and c.name.endswith(f"ICB - {c.code}") for c in fleet.ccgs.values()
    )
    assert {"00K", "15N", "99A"} <= set(fleet.ccgs)
    assert all(is_code("pcn", p.code) and p.name.endswith(" PCN") for p in fleet.pcns.values())
    assert all(is_code("practice", p.code) for p in fleet.practices.values())
    closed = [p for p in fleet.practices.values() if p.status == "C"]
    assert len(closed) == 2
    assert all(p.closed for p in closed)
    for host in fleet:
        assert host.practice.status == "A"
        assert fleet.ccgs[host.practice.ccg].icb == host.practice.icb
        assert fleet.pcns[host.practice.pcn or ""].ccg == host.practice.ccg
    assert len({h.hostname for h in fleet}) == len(fleet) == 1500


def test_hostnames_are_netbios_names() -> None:
    fleet = build_fleet(FleetOptions(hosts=400, seed=3))
    for host in fleet:
        assert len(host.hostname) <= NETBIOS_MAX
        assert normalise_hostname(host.hostname) == host.hostname
        assert host.hostname.startswith(host.practice.code.lower() + "-ws")
        assert host.machine.computer_name == host.hostname.upper()


def test_each_host_has_its_own_loopback_address() -> None:
    fleet = build_fleet(FleetOptions(hosts=600, seed=3, base_address="127.20.0.0"))
    found = [ipaddress.IPv4Address(h.address) for h in fleet]
    assert len(set(found)) == 600
    assert all(a in ipaddress.ip_network("127.20.0.0/16") for a in found)
    assert all(int(a) & 0xFF not in (0, 255) for a in found)
    assert "127.0.0.1" not in addresses("127.0.0.0", 10)
    with pytest.raises(ValueError, match=r"not in 127\.0\.0\.0/8"):
        addresses("10.0.0.0", 1)
    with pytest.raises(ValueError, match="do not fit"):
        addresses("127.255.255.200", 100)
    with pytest.raises(ValueError, match="not an IPv4 address"):
        addresses("localhost", 1)


def test_mix_covers_every_weighted_profile_and_faults_follow_the_rate() -> None:
    fleet = build_fleet(FleetOptions(hosts=200, seed=9, fault_rate=0.1))
    profiles = collections.Counter(h.profile.name for h in fleet)
    assert set(profiles) == {p.name for p in PROFILES.values() if p.weight}
    faults = collections.Counter(h.fault for h in fleet if h.fault)
    assert sum(faults.values()) == 20
    assert set(faults) == set(Fault)  # every kind shows up once there is room
    good = build_fleet(FleetOptions(hosts=50, seed=9, mix="all-good"))
    assert {h.expected_status for h in good} == {"compliant"}
    bad = build_fleet(FleetOptions(hosts=50, seed=9, mix="all-bad"))
    assert {h.expected_status for h in bad} == {"noncompliant"}


def test_expectations_follow_faults() -> None:
    fleet = build_fleet(FleetOptions(hosts=100, seed=2, fault_rate=0.5))
    for host in fleet:
        if host.fault is None or host.fault is Fault.SLOW:
            assert host.expected_outcome == "ok"
            assert host.expected_status == host.profile.expected_status
        else:
            assert host.expected_outcome != "ok"
            assert host.expected_status in ("unreachable", "auth_failed", "error")


def test_slow_hosts_are_slower() -> None:
    fleet = build_fleet(FleetOptions(hosts=1, seed=1, rtt_ms=10, exec_ms=100))
    host = fleet.hosts[0]
    normal = sum(host.timing().script_run for _ in range(50))
    host.fault = Fault.SLOW
    slow = sum(host.timing().script_run for _ in range(50))
    assert slow > 3 * normal


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hosts": 0}, "at least one host"),
        ({"hosts": 1, "fault_rate": 1.5}, "between 0 and 1"),
        ({"hosts": 1, "rtt_ms": -1}, "negative"),
        ({"hosts": 1, "transport": "telnet"}, "unknown transport"),
        ({"hosts": 1, "mix": "random"}, "unknown profile mix"),
    ],
)
def test_bad_options_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FleetOptions(**kwargs)  # type: ignore[arg-type]
