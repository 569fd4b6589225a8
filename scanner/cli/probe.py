"""`cmscan probe HOST`: probe one machine now and show what it reports and what the policy says."""

from __future__ import annotations

import enum
import ipaddress
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from collectors.base import Outcome, ScanResult, Target
from collectors.facts import Facts
from config.settings import Settings
from inventory.spec import DEFAULT_PORTS
from scanner.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    ConfigOption,
    DbOption,
    err,
    fail,
    open_database,
    out,
    run,
    settings,
)
from scanner.cli.policy import run_graded
from store.db import Database
from store.hosts import HostLookupError, find_host
from store.model import Host, utcnow

if TYPE_CHECKING:
    from collectors.credentials import Credentials
    from policy import Policy, Verdict

DEFAULT_PROFILE = "default"


class TransportChoice(enum.StrEnum):
    winrm = "winrm"
    winrm_https = "winrm-https"
    ssh = "ssh"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to probe and how: from the inventory, overridden by the command's options."""

    target: Target
    profile: str
    inventoried: bool


@dataclass(frozen=True, slots=True)
class _Report:
    plan: _Plan
    result: ScanResult
    policy: Policy
    verdict: Verdict | None


def probe(
    host: Annotated[
        str, typer.Argument(help="Inventoried host name (or unique short name), or an address.")
    ],
    transport: Annotated[
        TransportChoice | None,
        typer.Option("--transport", "-t", help="Transport (default: the inventory's, or winrm)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", min=1, max=65535, help="Port (default: the transport's)."),
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", "-a", help="Dial this address instead.")
    ] = None,
    credential_profile: Annotated[
        str | None,
        typer.Option(
            "--credential-profile", "-P", help="Credential profile (default: the inventory's)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of a summary.")
    ] = False,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Probe one host now and print its facts and the active policy's verdict.

    The host is looked up in the inventory for its address, transport, port and credential
    profile; a name or address that is not inventoried is probed with the options given.
    Nothing is recorded in the host's history (SSH host keys are still pinned on first use
    when ssh.host_key_policy = "tofu"). Exit 0 when the probe succeeded, 1 when the host
    could not be probed, 2 for usage or configuration errors.
    """
    current = settings(config, database_url=database)
    db = open_database(current)
    try:
        report = run_graded(_probe(current, db, host, transport, port, address, credential_profile))
    finally:
        run(db.dispose())
    if as_json:
        json.dump(_document(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _summary(report)
    raise typer.Exit(EXIT_OK if report.result.outcome is Outcome.OK else EXIT_FINDINGS)


async def _probe(
    current: Settings,
    db: Database,
    name: str,
    transport: TransportChoice | None,
    port: int | None,
    address: str | None,
    profile: str | None,
) -> _Report:
    from engine.runtime import timeouts_from
    from engine.transports import TransportError, build_collectors
    from policy import evaluate
    from store.policies import get_active_policy
    from store.waivers import active_waivers

    async with db.read() as session:
        try:
            host = await find_host(session, name=name)
        except HostLookupError as exc:
            fail(str(exc))
        policy = await get_active_policy(session)
        waived: set[str] = set()
        if host is not None and host.id is not None:
            found = await active_waivers(session, host_ids=[host.id], now=utcnow())
            waived = found.get(host.id, set())
    plan = _plan(name, host, transport, port, address, profile, policy)
    credentials = _credentials(current, plan.profile)
    try:
        collector = build_collectors(current, database=db, names=[plan.target.transport])[
            plan.target.transport
        ]
    except TransportError as exc:
        fail(str(exc))
    try:
        result = await collector.collect(plan.target, credentials, timeouts_from(current))
    finally:
        await collector.aclose()
    verdict = evaluate(policy, result.facts, waived=waived) if result.facts is not None else None
    return _Report(plan, result, policy, verdict)


def _plan(
    name: str,
    host: Host | None,
    transport: TransportChoice | None,
    port: int | None,
    address: str | None,
    profile: str | None,
    policy: Policy,
) -> _Plan:
    if host is not None:
        chosen = transport.value if transport else host.transport
        default_port = host.port if chosen == host.transport else DEFAULT_PORTS[chosen]
        target = Target(
            hostname=host.hostname,
            port=port or default_port,
            transport=chosen,
            address=address or host.address,
            patterns=policy.watched_patterns,
        )
        return _Plan(target, profile or host.credential_profile, inventoried=True)
    hostname = name.strip().lower().rstrip(".")
    if not hostname:
        fail("give a host name or address")
    try:
        ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        if any(c.isspace() or c in "/\\@" for c in hostname):
            fail(f"{name!r} is neither a host name nor an address")
    chosen = transport.value if transport else "winrm"
    target = Target(
        hostname=hostname.strip("[]"),
        port=port or DEFAULT_PORTS[chosen],
        transport=chosen,
        address=address,
        patterns=policy.watched_patterns,
    )
    return _Plan(target, profile or DEFAULT_PROFILE, inventoried=False)


def _credentials(current: Settings, name: str) -> Credentials:
    from collectors.credentials import CredentialError
    from engine.credential_book import CredentialBook

    # Only the chosen profile: another profile's unreadable password file is not this probe's.
    wanted = {name: current.credentials[name]} if name in current.credentials else {}
    try:
        return CredentialBook(wanted).get(name)
    except CredentialError as exc:
        known = ", ".join(sorted(current.credentials)) or "none"
        fail(str(exc) if wanted else f"{exc}; configured: {known}")


def _document(report: _Report) -> dict[str, Any]:
    target, result = report.plan.target, report.result
    return {
        "host": target.hostname,
        "inventoried": report.plan.inventoried,
        "address": target.dial,
        "port": target.port,
        "transport": result.transport,
        "credential_profile": report.plan.profile,
        "outcome": result.outcome.value,
        "reason": result.reason,
        "duration_s": round(result.duration_s, 3),
        "details": result.details,
        "facts": result.facts.model_dump(mode="json") if result.facts is not None else None,
        "verdict": report.verdict.to_json() if report.verdict is not None else None,
    }


def _summary(report: _Report) -> None:
    target, result = report.plan.target, report.result
    where = f"{target.transport} {target.dial}:{target.port}, profile {report.plan.profile}"
    heading = Text(target.hostname, style="bold")
    heading.append(f"  ({where})")
    if not report.plan.inventoried:
        heading.append("  not in the inventory", style="yellow")
    out.print(heading)
    if result.facts is None:
        line = Text(f"{result.outcome.value}", style="bold red")
        line.append(f" after {result.duration_s:.1f}s: {result.reason}")
        err.print(line)
        return
    _print_facts(result.facts, result)
    if report.verdict is not None:
        _print_verdict(report.verdict, report.policy)


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def _print_facts(facts: Facts, result: ScanResult) -> None:
    os_ = facts.os
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="bold")
    info.add_column()
    info.add_row("OS", Text(" ".join(p for p in (os_.caption, os_.version) if p) or "unknown"))
    info.add_row("build", Text(os_.build or "unknown"))
    release = facts.dotnet_release
    info.add_row(".NET 4.x release", str(release) if release is not None else "not installed")
    readers = ", ".join(facts.smartcard_readers) or "none"
    info.add_row("smartcard readers", Text(readers))
    types = ", ".join(
        f"{t.name} ({t.minidriver or 'no minidriver'})" for t in facts.smartcard_types
    )
    info.add_row("smart card types", Text(types or "none"))
    info.add_row("CM listening on 43485", _yes_no(facts.cm_listening))
    pending = facts.pending_reboot
    signs = [
        label
        for label, flag in (
            ("component based servicing", pending.component_based_servicing),
            ("windows update", pending.windows_update),
            ("file rename operations", pending.file_rename_operations),
        )
        if flag
    ]
    info.add_row("pending reboot", "yes: " + ", ".join(signs) if signs else "no")
    for policy in facts.browser_policies:
        blocks = policy.block_third_party_cookies
        state = "not set" if blocks is None else "blocks" if blocks else "allows"
        allowed = ", ".join(policy.cookies_allowed_for_urls) or "none"
        info.add_row(
            f"{policy.browser} 3rd-party cookies", Text(f"{state}; allowed for: {allowed}")
        )
    probe = facts.probe
    info.add_row(
        "probe", f"{probe.version}, {probe.duration_ms} ms on the host, {result.duration_s:.1f}s"
    )
    if result.details.get("host_key"):
        info.add_row("SSH host key", result.details["host_key"])
    out.print(info)
    for warning in probe.warnings:
        err.print(Text(f"probe warning: {warning}", style="yellow"))

    products = Table(title="Watched products", title_justify="left")
    for heading in ("name", "version", "publisher", "view", "installed"):
        products.add_column(heading)
    for product in facts.products:
        products.add_row(
            Text(product.name),
            Text(product.version or ""),
            Text(product.publisher or ""),
            product.view,
            Text(product.install_date or ""),
        )
    if not facts.products:
        products.add_row("none installed", "", "", "", "")
    out.print(products)

    services = Table(title="Services", title_justify="left")
    for heading in ("service", "state", "start type"):
        services.add_column(heading)
    for service in facts.services:
        if service.present:
            services.add_row(
                service.name, Text(service.state or ""), Text(service.start_type or "")
            )
        else:
            services.add_row(service.name, Text("not installed", style="yellow"), "")
    out.print(services)


def _print_verdict(verdict: Verdict, policy: Policy) -> None:
    style = "bold green" if verdict.status == "compliant" else "bold red"
    line = Text("verdict: ")
    line.append(verdict.status, style=style)
    line.append(f"  (policy {policy.id})")
    out.print(line)
    for label, findings in (
        ("failing", verdict.failing),
        ("advisory", verdict.advisories),
        ("waived", verdict.waived),
    ):
        for finding in findings:
            row = Text(f"  {label:<8} ")
            row.append(finding.rule_id, style="bold")
            row.append(f"  {finding.reason}")
            out.print(row)
