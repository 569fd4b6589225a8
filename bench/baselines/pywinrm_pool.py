"""Baseline: the quick script an IT team writes with pywinrm, one probe per thread of a pool.

    python -m bench.baselines.pywinrm_pool --targets targets.json --out outputs.json
    python -m bench.baselines.pywinrm_pool --targets targets.json --out check.json --run-ps-check

The first thing such a script tries is `Session.run_ps(script)`. pywinrm sends the script as
`powershell -EncodedCommand <base64 of UTF-16>` on cmd.exe's command line, which Windows cuts
at 8,191 characters; cmscan's probe (13 KB, 35 KB encoded) does not fit, so every host answers
"The command line is too long" (--run-ps-check shows it). The script that works is the next
one people write: pywinrm's Protocol, `powershell.exe -Command -`, and the probe on stdin as
one line, exactly as cmscan's SSH transport sends it. NTLM over HTTP with message encryption,
like cmscan.
"""

from __future__ import annotations

import winrm
from winrm.protocol import Protocol

from bench.baselines.common import Host, Outputs, Targets, arguments, describe_failure, run_pool
from collectors.probe import SSH_COMMAND, probe_script

NAME = "pywinrm"
# pywinrm's own defaults, stated: a Receive waits up to 20 s; a request gives up after 30 s.
OPERATION_TIMEOUT_S = 20
READ_TIMEOUT_S = 30


def _endpoint(host: Host) -> str:
    return f"http://{host.address}:{host.port}/wsman"


def probe(targets: Targets, password: str, host: Host) -> str:
    """Open a cmd shell, run PowerShell reading the probe from stdin, close the shell."""
    protocol = Protocol(
        endpoint=_endpoint(host),
        transport="ntlm",
        username=targets.username,
        password=password,
        message_encryption="always",
        operation_timeout_sec=OPERATION_TIMEOUT_S,
        read_timeout_sec=READ_TIMEOUT_S,
    )
    shell = protocol.open_shell()
    try:
        command = protocol.run_command(shell, SSH_COMMAND)
        protocol.send_command_input(shell, command, targets.probe_line, end=True)
        stdout, stderr, status = protocol.get_command_output(shell, command)
        protocol.cleanup_command(shell, command)
    finally:
        protocol.close_shell(shell)
    if status != 0:
        raise RuntimeError(f"exit {status}: {stderr.decode('utf-8', 'replace')[:200]}")
    return stdout.decode("utf-8", "replace")


def run_ps_check(targets: Targets, password: str, host: Host) -> dict[str, object]:
    """What `Session.run_ps(probe)`, the obvious first attempt, gives on one host."""
    session = winrm.Session(
        _endpoint(host),
        auth=(targets.username, password),
        transport="ntlm",
        message_encryption="always",
    )
    try:
        response = session.run_ps(probe_script())
    except Exception as exc:  # the check reports whatever happens
        return {"host": host.hostname, "error": describe_failure(exc)}
    return {
        "host": host.hostname,
        "status_code": response.status_code,
        "stderr": response.std_err.decode("utf-8", "replace")[:200],
        "got_facts": response.status_code == 0 and response.std_out.startswith(b"{"),
    }


def main() -> None:
    parser_args = arguments(__doc__.splitlines()[0], flags=("--run-ps-check",))
    targets = Targets.load(parser_args.targets)
    password = targets.password
    if parser_args.run_ps_check:
        outputs = Outputs({}, {}, {"run_ps": run_ps_check(targets, password, targets.hosts[0])})
    else:
        outputs, _ = run_pool(
            targets, lambda host: probe(targets, password, host), parser_args.concurrency
        )
    outputs.write(parser_args.out)


if __name__ == "__main__":
    main()
