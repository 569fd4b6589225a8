"""A reproducible simulated fleet: organisations and hosts drawn from one seed, each host a
SimulatedHost with its own loopback address, profile, latency and (maybe) fault."""

from __future__ import annotations

import ipaddress
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from collectors.facts import Facts, OperatingSystem, Product
from simulator import answers
from simulator.behaviour import Fault, ScriptResult, Timing
from simulator.organisations import ICBS, Ccg, Icb, Pcn, Practice, Registry
from simulator.profiles import (
    ALWAYS_INSTALLED,
    FAULT_EXPECTATIONS,
    FAULT_WEIGHTS,
    ORDINARY_SOFTWARE,
    Profile,
    mix_profiles,
)

TransportChoice = Literal["winrm", "winrm-https", "ssh", "mixed"]
TRANSPORT_CHOICES = ("winrm", "winrm-https", "ssh", "mixed")
DEFAULT_BASE_ADDRESS = "127.10.0.0"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
# SLOW multiplies a host's latency by this: well past normal, still inside default deadlines.
SLOW_FACTOR = 8.0

OPERATING_SYSTEMS = (
    OperatingSystem(caption="Microsoft Windows 10 Enterprise", version="10.0.19045", build="19045"),
    OperatingSystem(caption="Microsoft Windows 10 Pro", version="10.0.19045", build="19045"),
    OperatingSystem(caption="Microsoft Windows 11 Enterprise", version="10.0.22631", build="22631"),
    OperatingSystem(caption="Microsoft Windows 11 Pro", version="10.0.26100", build="26100"),
)
READERS = (
    "Identiv uTrust 2700 R Smart Card Reader 0",
    "HID Global OMNIKEY 3x21 Smart Card Reader 0",
    "Cherry GmbH SmartTerminal ST-1144 0",
    "Dell Dell Smart Card Reader Keyboard 0",
)


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """Everything a fleet is drawn from: the same options always give the same fleet."""

    hosts: int
    seed: int = 1
    mix: str = "mix"
    fault_rate: float = 0.0
    rtt_ms: float = 10.0
    exec_ms: float = 250.0
    base_address: str = DEFAULT_BASE_ADDRESS
    transport: TransportChoice = "winrm"
    # With it, every probe's run time is drawn from exec_ms..exec_ms_max (the spread a
    # benchmark asks for) rather than spread around exec_ms host by host.
    exec_ms_max: float | None = None
    # The share of hosts with each fault, e.g. {POWERED_OFF: 0.1}: an exact mix, in place of
    # fault_rate's realistic blend of every kind.
    fault_mix: Mapping[Fault, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hosts < 1:
            raise ValueError("a fleet needs at least one host")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault rate {self.fault_rate} is not between 0 and 1")
        if self.rtt_ms < 0 or self.exec_ms < 0:
            raise ValueError("latencies cannot be negative")
        if self.exec_ms_max is not None and self.exec_ms_max < self.exec_ms:
            raise ValueError(
                f"probe run time range {self.exec_ms:g}-{self.exec_ms_max:g} ms ends before it"
                " starts"
            )
        # Frozen, so the mix is copied into a read-only mapping the caller cannot change.
        object.__setattr__(self, "fault_mix", MappingProxyType(checked_fault_mix(self.fault_mix)))
        if self.fault_mix and self.fault_rate:
            raise ValueError("give a fault rate or a fault mix, not both")
        if self.transport not in TRANSPORT_CHOICES:
            raise ValueError(
                f"unknown transport {self.transport!r}; use one of {', '.join(TRANSPORT_CHOICES)}"
            )
        mix_profiles(self.mix)  # raises for an unknown mix
        addresses(self.base_address, self.hosts)  # raises when they do not fit on loopback


def checked_fault_mix(mix: Mapping[Fault, float] | Mapping[str, float]) -> dict[Fault, float]:
    """A fault mix with its names as Faults, or ValueError saying which share is wrong."""
    checked: dict[Fault, float] = {}
    for name, share in mix.items():
        try:
            fault = Fault(name)
        except ValueError:
            kinds = ", ".join(f.value for f in Fault)
            raise ValueError(f"unknown fault {name!r} in the fault mix; use {kinds}") from None
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"fault share {fault.value}={share:g} is not between 0 and 1")
        checked[fault] = float(share)
    if sum(checked.values()) > 1.0 + 1e-9:
        raise ValueError(
            f"the fault mix adds up to {sum(checked.values()):g}, more than every host"
        )
    return checked


class SimHost:
    """One simulated Windows workstation. Endpoints read it; admin changes write it."""

    def __init__(
        self,
        *,
        hostname: str,
        address: str,
        practice: Practice,
        transport: str,
        profile: Profile,
        fault: Fault | None,
        machine: answers.Machine,
        rtt_s: float,
        exec_s: float,
        timing_seed: str,
        exec_range_s: tuple[float, float] | None = None,
    ) -> None:
        self._hostname = hostname
        self.address = address
        self.practice = practice
        self.transport = transport
        self.profile = profile
        self.fault = fault
        self.machine = machine
        self.rtt_s = rtt_s
        self.exec_s = exec_s
        self.exec_range_s = exec_range_s
        self._timing = random.Random(timing_seed)
        # Filled in once the host's listeners are bound (simulator.listeners).
        self.winrm_port: int | None = None
        self.winrm_https_port: int | None = None
        self.ssh_port: int | None = None

    @property
    def hostname(self) -> str:
        return self._hostname

    @property
    def powered_on(self) -> bool:
        return self.fault is not Fault.POWERED_OFF

    def timing(self) -> Timing:
        scale = SLOW_FACTOR if self.fault is Fault.SLOW else 1.0
        jitter = self._timing.uniform
        if self.exec_range_s is not None:
            low, high = self.exec_range_s
            return Timing(
                round_trip=self.rtt_s * scale * jitter(0.8, 1.25),
                runspace_open=0.4 * scale * jitter(low, high),
                script_run=scale * jitter(low, high),
            )
        return Timing(
            round_trip=self.rtt_s * scale * jitter(0.8, 1.25),
            runspace_open=self.exec_s * 0.4 * scale * jitter(0.7, 1.4),
            script_run=self.exec_s * scale * jitter(0.7, 1.4),
        )

    def run_script(self, script: str, parameters: Mapping[str, object]) -> ScriptResult:
        return answers.run_script(self.profile.setup, self.machine, self.fault, script, parameters)

    def facts(self, patterns: tuple[str, ...] = ()) -> Facts:
        """The facts this host's probe would report (handy for tests and the demo)."""
        return answers.facts(self.profile.setup, self.machine, patterns)

    @property
    def expected_outcome(self) -> str:
        return "ok" if self.fault is None else FAULT_EXPECTATIONS[self.fault].outcome

    @property
    def expected_status(self) -> str:
        if self.fault is None:
            return self.profile.expected_status
        return FAULT_EXPECTATIONS[self.fault].status or self.profile.expected_status

    def port(self, transport: str | None = None) -> int | None:
        """The port its inventory row names for a transport (its own by default)."""
        return {
            "winrm": self.winrm_port,
            "winrm-https": self.winrm_https_port,
            "ssh": self.ssh_port,
        }[transport or self.transport]

    def __repr__(self) -> str:
        return f"SimHost({self.hostname} {self.address} {self.profile.name} fault={self.fault})"


@dataclass
class Fleet:
    """The organisations and hosts of one simulated estate."""

    options: FleetOptions
    icbs: dict[str, Icb] = field(default_factory=dict)
    ccgs: dict[str, Ccg] = field(default_factory=dict)
    pcns: dict[str, Pcn] = field(default_factory=dict)
    practices: dict[str, Practice] = field(default_factory=dict)
    hosts: list[SimHost] = field(default_factory=list)

    def __iter__(self) -> Iterator[SimHost]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def host(self, hostname: str) -> SimHost:
        folded = hostname.casefold()
        for host in self.hosts:
            if host.hostname == folded:
                return host
        raise KeyError(f"no simulated host named {hostname!r}")


def addresses(base: str, count: int) -> list[str]:
    """`count` loopback addresses from `base` upward, skipping .0, .255 and 127.0.0.1."""
    try:
        start = ipaddress.IPv4Address(base)
    except ValueError:
        raise ValueError(f"base address {base!r} is not an IPv4 address") from None
    if start not in LOOPBACK:
        raise ValueError(f"base address {base} is not in 127.0.0.0/8: hosts live on loopback")
    found: list[str] = []
    current = int(start)
    last = int(ipaddress.IPv4Address("127.255.255.254"))
    reserved = int(ipaddress.IPv4Address("127.0.0.1"))
    while len(found) < count:
        current += 1
        if current > last:
            raise ValueError(f"{count} hosts do not fit in loopback above {base}")
        if current & 0xFF in (0, 255) or current == reserved:
            continue
        found.append(str(ipaddress.IPv4Address(current)))
    return found


def _weighted(rng: random.Random, items: list[tuple[Profile, int]]) -> Profile:
    return rng.choices([p for p, _ in items], weights=[w for _, w in items])[0]


def _practice_sizes(rng: random.Random, hosts: int) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < hosts:
        sizes.append(rng.randint(3, 18))
    sizes[-1] -= sum(sizes) - hosts
    return sizes


def _group(rng: random.Random, items: int, low: int, high: int) -> list[int]:
    """Split `items` into consecutive groups of low..high (the last may be smaller)."""
    groups: list[int] = []
    while sum(groups) < items:
        groups.append(min(rng.randint(low, high), items - sum(groups)))
    return groups


def _machine(rng: random.Random, hostname: str, exec_s: float) -> answers.Machine:
    software = [
        Product(
            name=name,
            publisher=publisher,
            version=version,
            install_date=f"202{rng.randint(2, 4)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
            view=view,
        )
        for name, publisher, version, view in ORDINARY_SOFTWARE
        if name in ALWAYS_INSTALLED or rng.random() < 0.6
    ]
    readers = (rng.choice(READERS),) if rng.random() < 0.9 else tuple(rng.sample(READERS, 2))
    return answers.Machine(
        computer_name=hostname.upper(),
        os=rng.choice(OPERATING_SYSTEMS),
        ordinary_software=tuple(software),
        readers=readers,
        middleware_vendor=rng.choice(("oberthur", "idemia")),
        install_date=f"202{rng.randint(3, 5)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
        user_logged_on=rng.random() < 0.6,
        reboot_sign=rng.choice(
            ("component_based_servicing", "windows_update", "file_rename_operations")
        ),
        chrome_policy_set=rng.random() < 0.3,
        duration_ms=max(1, round(1000 * exec_s * rng.uniform(0.7, 1.4))),
    )


def _faults(rng: random.Random, count: int) -> list[Fault]:
    """`count` faults: one of each kind first (so small fleets show every kind), then by weight."""
    kinds = list(FAULT_WEIGHTS)
    rng.shuffle(kinds)
    chosen = kinds[:count]
    extra = max(0, count - len(chosen))
    chosen += rng.choices(kinds, weights=[FAULT_WEIGHTS[k] for k in kinds], k=extra)
    return chosen


def _typical_exec_s(options: FleetOptions) -> float:
    if options.exec_ms_max is None:
        return options.exec_ms / 1000
    return (options.exec_ms + options.exec_ms_max) / 2000


def _exec_range_s(options: FleetOptions) -> tuple[float, float] | None:
    if options.exec_ms_max is None:
        return None
    return options.exec_ms / 1000, options.exec_ms_max / 1000


def _mixed_faults(mix: Mapping[Fault, float], hosts: int) -> list[Fault]:
    """Exactly round(share x hosts) hosts of each fault in the mix (never more than the fleet)."""
    chosen: list[Fault] = []
    for fault, share in mix.items():
        chosen += [fault] * round(share * hosts)
    return chosen[:hosts]


def build_fleet(options: FleetOptions) -> Fleet:
    """Draw a fleet from its options: organisations top-down sized by the host count."""
    root = random.Random(f"cmscan-sim/{options.seed}")
    fleet = Fleet(options)
    registry = Registry(random.Random(root.random()))
    org_rng = random.Random(root.random())

    sizes = _practice_sizes(org_rng, options.hosts)
    pcn_sizes = _group(org_rng, len(sizes), 3, 7)
    ccg_sizes = _group(org_rng, len(pcn_sizes), 2, 5)
    icb_count = max(2, min(len(ICBS), math.ceil(len(ccg_sizes) / 3)))
    icb_count = min(icb_count, len(ccg_sizes))
    icbs = [registry.icb(i) for i in range(icb_count)]
    fleet.icbs = {i.code: i for i in icbs}

    practices: list[Practice] = []
    pcn_index = 0
    for ccg_number, pcns_in_ccg in enumerate(ccg_sizes):
        icb = icbs[ccg_number % len(icbs)]
        ccg = registry.ccg(icb)
        fleet.ccgs[ccg.code] = ccg
        for _ in range(pcns_in_ccg):
            pcn = registry.pcn(ccg)
            fleet.pcns[pcn.code] = pcn
            for _ in range(pcn_sizes[pcn_index]):
                practices.append(registry.practice(pcn, ccg, icb))
            pcn_index += 1
    # Two practices that have closed: in the ODS file, with no hosts inventoried.
    first_ccg = next(iter(fleet.ccgs.values()))
    for _ in range(2):
        practices.append(registry.practice(None, first_ccg, fleet.icbs[first_ccg.icb], closed=True))
    fleet.practices = {p.code: p for p in practices}

    host_rng = random.Random(root.random())
    slots: list[tuple[Practice, int]] = []
    for practice, size in zip(practices, sizes, strict=False):
        slots.extend((practice, n) for n in range(1, size + 1))
    addrs = addresses(options.base_address, options.hosts)

    order = list(range(options.hosts))
    host_rng.shuffle(order)
    weighted = mix_profiles(options.mix)
    profiles: list[Profile | None] = [None] * options.hosts
    # Every profile of the mix appears once (when there is room), the rest follow the weights.
    for position, index in enumerate(order):
        profiles[index] = (
            weighted[position][0] if position < len(weighted) else _weighted(host_rng, weighted)
        )
    faults: list[Fault | None] = [None] * options.hosts
    fault_order = list(range(options.hosts))
    host_rng.shuffle(fault_order)
    if options.fault_mix:
        drawn = _mixed_faults(options.fault_mix, options.hosts)
    else:
        drawn = _faults(host_rng, round(options.fault_rate * options.hosts))
    for index, fault in zip(fault_order[: len(drawn)], drawn, strict=True):
        faults[index] = fault

    for index, ((practice, number), address) in enumerate(zip(slots, addrs, strict=True)):
        hostname = f"{practice.code}-ws{number:03d}".lower()
        rng = random.Random(f"{options.seed}/host/{hostname}")
        transport = options.transport
        if transport == "mixed":
            transport = rng.choices(("winrm", "winrm-https", "ssh"), weights=(5, 3, 2))[0]
        profile = profiles[index]
        assert profile is not None
        fleet.hosts.append(
            SimHost(
                hostname=hostname,
                address=address,
                practice=practice,
                transport=transport,
                profile=profile,
                fault=faults[index],
                machine=_machine(rng, hostname, _typical_exec_s(options)),
                rtt_s=options.rtt_ms / 1000 * rng.uniform(0.5, 2.0),
                exec_s=options.exec_ms / 1000 * rng.uniform(0.6, 1.6),
                timing_seed=f"{options.seed}/timing/{hostname}",
                exec_range_s=_exec_range_s(options),
            )
        )
    return fleet
