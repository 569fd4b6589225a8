"""Baseline: Ansible (ansible-core with pypsrp) running the probe as an ad-hoc `raw` command over
its `psrp` connection plugin.

    python -m bench.baselines.ansible_psrp --targets targets.json --out outputs.json \\
        --concurrency 50 --ansible bench/.venv-ansible/bin/ansible

The inventory is written from the targets (NTLM over HTTP with message encryption, as cmscan
uses). `raw` over psrp runs its argument as a PowerShell script in a runspace, so the probe
goes as its one-line form; Ansible's own argument splitting refuses the probe's source as is.
Results come back through the `tree` callback, one JSON file per host. This wrapper reports
its own CPU so the harness can charge Ansible (and all its forks) alone.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

from bench.baselines.common import Outputs, Targets, arguments

NAME = "ansible"
DEFAULT_ANSIBLE = Path(__file__).resolve().parents[1] / ".venv-ansible" / "bin" / "ansible"


def inventory(targets: Targets, password: str) -> str:
    """An INI inventory of the targets with the psrp connection settings."""
    lines = ["[fleet]"]
    lines += [f"{h.hostname} ansible_host={h.address} ansible_port={h.port}" for h in targets.hosts]
    lines += [
        "",
        "[fleet:vars]",
        "ansible_connection=psrp",
        "ansible_psrp_protocol=http",
        "ansible_psrp_auth=ntlm",
        "ansible_psrp_message_encryption=always",
        f"ansible_user={targets.username}",
        # The simulated fleet's throw-away password, in a file only this user can read.
        f"ansible_password={password}",
    ]
    return "\n".join(lines) + "\n"


def environment(workdir: Path) -> dict[str, str]:
    """Ansible's settings for the run: its state under `workdir`, nothing from ~/.ansible."""
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_HOME": str(workdir / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_HOST_KEY_CHECKING": "False",  # no SSH here; psrp has no host keys
        }
    )
    env.pop("ANSIBLE_CONFIG", None)
    return env


def command(ansible: Path, inventory_file: Path, tree: Path, line: str, forks: int) -> list[str]:
    return [
        str(ansible),
        "fleet",
        "-i",
        str(inventory_file),
        "-m",
        "raw",
        "-a",
        line.strip(),
        "-f",
        str(forks),
        "--tree",
        str(tree),
    ]


def read_tree(tree: Path, targets: Targets) -> Outputs:
    """Each host's stdout from the tree callback's files, or why it failed."""
    outputs: dict[str, str] = {}
    failures: dict[str, str] = {}
    for host in targets.hosts:
        path = tree / host.hostname
        if not path.exists():
            failures[host.hostname] = "error: Ansible wrote no result"
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        if result.get("unreachable"):
            failures[host.hostname] = f"unreachable: {str(result.get('msg'))[:200]}"
        elif result.get("failed") or result.get("rc") != 0:
            failures[host.hostname] = f"error: rc={result.get('rc')} {str(result.get('msg'))[:200]}"
        else:
            outputs[host.hostname] = str(result.get("stdout", ""))
    return Outputs(outputs, failures, {})


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    targets = Targets.load(args.targets)
    ansible = Path(os.environ.get("CMSCAN_BENCH_ANSIBLE", DEFAULT_ANSIBLE))
    workdir = args.out.parent / "ansible"
    workdir.mkdir(parents=True, exist_ok=True)
    inventory_file = workdir / "inventory.ini"
    descriptor = os.open(inventory_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(inventory(targets, targets.password))
    tree = workdir / "tree"
    with (workdir / "stdout.txt").open("wb") as out, (workdir / "stderr.txt").open("wb") as err:
        finished = subprocess.run(
            command(ansible, inventory_file, tree, targets.probe_line, args.concurrency),
            stdout=out,
            stderr=err,
            env=environment(workdir),
            cwd=workdir,
            check=False,
        )
    outputs = read_tree(tree, targets)
    own = resource.getrusage(resource.RUSAGE_SELF)
    outputs.notes = {
        "ansible_exit": finished.returncode,
        "forks": args.concurrency,
        # The harness subtracts this wrapper's own CPU to charge Ansible alone.
        "wrapper_cpu_s": own.ru_utime + own.ru_stime,
    }
    outputs.write(args.out)


if __name__ == "__main__":
    main()
