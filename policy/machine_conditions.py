"""Conditions on the machine: .NET release, services, smartcards, pending reboot, a port."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.facts import Facts, SmartCardType
from policy.name_patterns import Matcher
from policy.versions import NEGATED

# .NET Framework 4.x Release values of the first build of each version (Microsoft's table),
# only to print a threshold the way people say it: 528040 is "4.8".
DOTNET_VERSIONS = {
    378389: "4.5",
    378675: "4.5.1",
    379893: "4.5.2",
    393295: "4.6",
    394254: "4.6.1",
    394802: "4.6.2",
    460798: "4.7",
    461308: "4.7.1",
    461808: "4.7.2",
    528040: "4.8",
    533320: "4.8.1",
}
_INT_OPS = {
    ">=": int.__ge__,
    ">": int.__gt__,
    "<=": int.__le__,
    "<": int.__lt__,
    "==": int.__eq__,
    "!=": int.__ne__,
}


def _dotnet_name(release: int) -> str:
    name = DOTNET_VERSIONS.get(release)
    return f" ({name})" if name else ""


@dataclass(frozen=True, slots=True)
class DotnetCondition:
    """The .NET Framework 4.x Release value compares as required."""

    op: str
    release: int

    def test(self, facts: Facts) -> bool:
        actual = facts.dotnet_release
        return actual is not None and _INT_OPS[self.op](actual, self.release)

    def explain(self, facts: Facts) -> str:
        actual = facts.dotnet_release
        if actual is None:
            return ".NET Framework 4.x not installed"
        op = self.op if self.test(facts) else NEGATED[self.op]
        return f".NET Framework release {actual} {op} {self.release}{_dotnet_name(self.release)}"


@dataclass(frozen=True, slots=True)
class ServiceCondition:
    """A service exists (or not) with its start type and state in, or out of, given sets."""

    name: str
    present: bool
    start_type: frozenset[str] | None
    start_type_not: frozenset[str] | None
    state: frozenset[str] | None
    state_not: frozenset[str] | None
    # The sets as written, for messages.
    shown: dict[str, str]

    def _problem(self, facts: Facts) -> str | None:
        service = facts.service(self.name)
        if service is None:
            return f"{self.name} was not reported by the probe"
        if not self.present:
            return f"{self.name} is present" if service.present else None
        if not service.present:
            return f"{self.name} not present"
        for attribute, label, allowed, refused in (
            ("start_type", "start type", self.start_type, self.start_type_not),
            ("state", "state", self.state, self.state_not),
        ):
            if allowed is None and refused is None:
                continue
            value: str | None = getattr(service, attribute)
            if value is None:
                return f"{self.name} {label} unknown"
            folded = value.casefold()
            if refused is not None and folded in refused:
                return f"{self.name} {label} is {value}"
            if allowed is not None and folded not in allowed:
                return f"{self.name} {label} is {value} (expected {self.shown[attribute]})"
        return None

    def test(self, facts: Facts) -> bool:
        return self._problem(facts) is None

    def explain(self, facts: Facts) -> str:
        problem = self._problem(facts)
        if problem is not None:
            return problem
        service = facts.service(self.name)
        if service is None or not service.present:
            return f"{self.name} not present"
        return (
            f"{self.name} present, start type {service.start_type or 'unknown'},"
            f" state {service.state or 'unknown'}"
        )


@dataclass(frozen=True, slots=True)
class ReaderCondition:
    """At least one smartcard reader is present (or, with `expected` false, none is)."""

    expected: bool

    def test(self, facts: Facts) -> bool:
        return bool(facts.smartcard_readers) is self.expected

    def explain(self, facts: Facts) -> str:
        readers = facts.smartcard_readers
        if not readers:
            return "no smartcard reader present"
        more = f" and {len(readers) - 2} more" if len(readers) > 2 else ""
        return "smartcard reader present: " + ", ".join(readers[:2]) + more


@dataclass(frozen=True, slots=True)
class CardTypeCondition:
    """A registered smart-card type matches by name (and, if given, by minidriver)."""

    name: Matcher
    minidriver: Matcher | None

    def _found(self, facts: Facts) -> tuple[list[SmartCardType], SmartCardType | None]:
        named = [card for card in facts.smartcard_types if self.name(card.name)]
        minidriver = self.minidriver
        good = next((c for c in named if minidriver is None or minidriver(c.minidriver)), None)
        return named, good

    def test(self, facts: Facts) -> bool:
        return self._found(facts)[1] is not None

    def explain(self, facts: Facts) -> str:
        named, good = self._found(facts)
        if good is not None:
            driver = good.minidriver or "none"
            return f"smart-card type {good.name} registered (minidriver {driver})"
        if not named:
            return f"no smart-card type matching {self.name} registered"
        card = named[0]
        return (
            f"smart-card type {card.name} uses minidriver {card.minidriver or 'none'},"
            f" not {self.minidriver}"
        )


@dataclass(frozen=True, slots=True)
class PendingRebootCondition:
    """A pending-reboot indicator is set (or, with `expected` false, none is)."""

    expected: bool

    def test(self, facts: Facts) -> bool:
        return facts.pending_reboot.pending is self.expected

    def explain(self, facts: Facts) -> str:
        signs = facts.pending_reboot
        names = [
            name
            for name, flag in (
                ("Component Based Servicing", signs.component_based_servicing),
                ("Windows Update", signs.windows_update),
                ("PendingFileRenameOperations", signs.file_rename_operations),
            )
            if flag
        ]
        return f"reboot pending ({', '.join(names)})" if names else "no reboot pending"


@dataclass(frozen=True, slots=True)
class ListeningCondition:
    """Credential Management listens on localhost (known only while a user is logged in)."""

    expected: bool

    def test(self, facts: Facts) -> bool:
        return facts.cm_listening is self.expected

    def explain(self, facts: Facts) -> str:
        if facts.cm_listening is None:
            return "whether Credential Management listens is unknown"
        verb = "listens" if facts.cm_listening else "does not listen"
        return f"Credential Management {verb} on localhost"
