"""Baseline: the quick SSH script, paramiko in a thread pool, against Windows OpenSSH.

    python -m bench.baselines.paramiko_pool --targets targets.json --out outputs.json

Each thread connects with the fleet's client key, checks the host key against known_hosts
(read once, as a careful script would; unknown keys are refused), runs
`powershell.exe -NoProfile -NonInteractive -Command -` and writes the probe to its stdin as
the same one line cmscan's SSH transport sends.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import paramiko  # type: ignore[import-untyped]
from paramiko.hostkeys import HostKeyEntry  # type: ignore[import-untyped]
from paramiko.ssh_exception import NoValidConnectionsError  # type: ignore[import-untyped]

from bench.baselines.common import Host, Targets, arguments, run_pool
from collectors.probe import SSH_COMMAND

NAME = "paramiko"
CONNECT_TIMEOUT_S = 10
COMMAND_TIMEOUT_S = 60


def known_hosts(path: Path) -> dict[str, dict[str, paramiko.PKey]]:
    """known_hosts indexed by name once: paramiko's HostKeys looks names up one line at a time."""
    index: dict[str, dict[str, paramiko.PKey]] = defaultdict(dict)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entry = HostKeyEntry.from_line(line)
        if entry is None or entry.key is None:
            continue
        for name in entry.hostnames:
            index[name][entry.key.get_name()] = entry.key
    return index


def probe(
    targets: Targets,
    keys: dict[str, dict[str, paramiko.PKey]],
    client_key: paramiko.PKey,
    host: Host,
) -> str:
    client = paramiko.SSHClient()
    name = f"[{host.address}]:{host.port}" if host.port != 22 else host.address
    for key_type, key in keys.get(name, {}).items():
        client.get_host_keys().add(name, key_type, key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            host.address,
            port=host.port,
            username=targets.username,
            pkey=client_key,
            allow_agent=False,
            look_for_keys=False,
            timeout=CONNECT_TIMEOUT_S,
            banner_timeout=CONNECT_TIMEOUT_S,
            auth_timeout=CONNECT_TIMEOUT_S,
        )
        stdin, stdout, stderr = client.exec_command(SSH_COMMAND, timeout=COMMAND_TIMEOUT_S)
        stdin.write(targets.probe_line)
        stdin.channel.shutdown_write()
        output = stdout.read()
        errors = stderr.read()
        status = stdout.channel.recv_exit_status()
    finally:
        client.close()
    if status != 0:
        raise RuntimeError(f"exit {status}: {errors.decode('utf-8', 'replace')[:200]}")
    return bytes(output).decode("utf-8", "replace")


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    targets = Targets.load(args.targets)
    if targets.known_hosts is None or targets.client_key is None:
        raise SystemExit("the targets file names no known_hosts or client key for SSH")
    keys = known_hosts(targets.known_hosts)
    client_key = paramiko.PKey.from_path(targets.client_key)
    outputs, _ = run_pool(
        targets,
        lambda host: probe(targets, keys, client_key, host),
        args.concurrency,
        unreachable=(NoValidConnectionsError,),
    )
    outputs.write(args.out)


if __name__ == "__main__":
    main()
