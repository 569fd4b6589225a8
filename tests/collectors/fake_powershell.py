"""A stand-in for powershell.exe behind a real sshd: reads the probe from stdin and answers.

sshd runs it as its ForceCommand with the mode as argument; the command the client asked
for arrives in SSH_ORIGINAL_COMMAND and must be cmscan's.
"""

from __future__ import annotations

import os
import sys
import time

from collectors.probe import SSH_COMMAND, parse_stdin_invocation
from simulator.behaviour import Fault
from tests.collectors.hosts import scripted


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    asked = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    if asked != SSH_COMMAND:
        sys.stderr.write(f"'{asked.split()[0] if asked else ''}' is not recognized\r\n")
        return 1
    if mode == "hang":
        # Hang like a wedged host, but never outlive the session: sshd does not signal a
        # command without a tty when the client goes away, it only leaves it behind.
        parent = os.getppid()
        deadline = time.monotonic() + 30
        while os.getppid() == parent and time.monotonic() < deadline:
            time.sleep(0.1)
        return 0
    text = sys.stdin.buffer.read().decode("utf-8")
    invocation = parse_stdin_invocation(text)
    if invocation is None:
        sys.stderr.write("The term is not recognized as the name of a cmdlet.\r\n")
        return 1
    script, patterns = invocation
    fault = None if mode == "ok" else Fault(mode)
    result = scripted(script, {"Patterns": patterns}, fault)
    if result.error is not None:
        sys.stderr.write(
            f"{result.error.message}\r\n    + CategoryInfo : {result.error.category}\r\n"
        )
        return 1
    sys.stdout.write(result.output + "\r\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
