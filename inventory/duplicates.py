"""Duplicate hosts in an inventory: same name in any case, FQDN vs short name, same address."""

from __future__ import annotations

from inventory.hostnames import short_name
from inventory.problems import Inventory, Problem, SourcedHost


def reject_duplicates(inventory: Inventory) -> None:
    """Turn every host that repeats an earlier one into an error naming the earlier place."""
    by_name: dict[str, SourcedHost] = {}
    by_short: dict[str, list[SourcedHost]] = {}  # short name -> hosts with that first label
    by_endpoint: dict[tuple[str, int], SourcedHost] = {}
    kept: list[SourcedHost] = []
    for host in inventory.hosts:
        spec = host.spec
        earlier = by_name.get(spec.hostname)
        if earlier is None:
            earlier = _short_name_clash(spec.hostname, by_short)
        if earlier is not None:
            message = f"{spec.hostname} duplicates {earlier.spec.hostname} at {earlier.where}"
            inventory.problems.append(Problem(host.where, message))
            inventory.mention(spec.hostname)
            continue
        if spec.address is not None:
            other = by_endpoint.get((spec.address, spec.port))
            if other is not None:
                inventory.problems.append(
                    Problem(
                        host.where,
                        f"address {spec.address} port {spec.port} is already used by"
                        f" {other.spec.hostname} at {other.where}",
                    )
                )
                # Still listed in the file: a --skip-invalid import must not retire it.
                inventory.mention(spec.hostname)
                continue
            by_endpoint[(spec.address, spec.port)] = host
        by_name[spec.hostname] = host
        by_short.setdefault(short_name(spec.hostname), []).append(host)
        kept.append(host)
    inventory.hosts = kept


def _short_name_clash(hostname: str, by_short: dict[str, list[SourcedHost]]) -> SourcedHost | None:
    # PC01 and pc01.practice.nhs.uk are the same machine written two ways; two FQDNs in
    # different domains that share a first label are different machines.
    same_label = by_short.get(short_name(hostname), [])
    if "." not in hostname:
        return same_label[0] if same_label else None
    return next((h for h in same_label if "." not in h.spec.hostname), None)
