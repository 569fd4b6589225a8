"""The WinRS cmd shell: enough of cmd.exe and powershell.exe for what remote clients run.

Above all `powershell -EncodedCommand`, which is how pywinrm runs PowerShell.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from collectors.probe import parse_stdin_invocation
from collectors.wsman_envelopes import RSP
from simulator import shells, wsman
from simulator.behaviour import PowerShellError, ScriptResult, SimulatedHost

CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
CTRL_C = f"{RSP}/signal/ctrl_c"
# What a console process killed by Ctrl+C exits with (STATUS_CONTROL_C_EXIT).
CTRL_C_EXIT = -1073741510
MAX_COMMANDS = 1000
# cmd.exe refuses longer command lines; CreateProcess (WINRS_SKIP_CMD_SHELL) longer still.
CMD_MAX_LINE = 8191
CREATE_PROCESS_MAX_LINE = 32767
MAX_STDIN = 1024 * 1024
CLIXML_NAMESPACE = "http://schemas.microsoft.com/powershell/2004/04"
# powershell.exe switches that take a value, which must be skipped with it.
_VALUED = (
    "executionpolicy",
    "inputformat",
    "outputformat",
    "windowstyle",
    "version",
    "psconsolefile",
    "configurationname",
)
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_CMD_C = re.compile(r'\s*"?(?:[^\s"]*[\\/])?cmd(?:\.exe)?"?\s+/c(?:\s+|$)', re.IGNORECASE)


@dataclass
class CmdCommand:
    """One process started in the shell, and what it has left to say."""

    command_id: str
    ready_at: float
    run: tuple[str, str] = ("cmd", "")  # what to do once input is complete: kind and text
    wants_stdin: bool = False
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False
    ran: bool = False
    exit_code: int = 0
    stdout: deque[bytes] = field(default_factory=deque)
    stderr: deque[bytes] = field(default_factory=deque)


class CmdShell(shells.Shell):
    """cmd.exe behind WinRS."""

    ctrl_c = CTRL_C

    def __init__(
        self, host: SimulatedHost, *, owner: str, client_ip: str, codepage: str | None
    ) -> None:
        super().__init__(str(uuid.uuid4()).upper(), CMD_URI, host, owner=owner, client_ip=client_ip)
        self.encoding = _encoding(codepage)
        self._commands: dict[str, CmdCommand] = {}

    def command(self, request: wsman.Request, script_run: float) -> str:
        line = request.body
        if line is None or line.tag != f"{{{RSP}}}CommandLine":
            raise wsman.invalid_xml("(Command needs a CommandLine)")
        if len(self._commands) >= MAX_COMMANDS:
            raise wsman.invalid_parameter("The shell holds too many commands.")
        text = (line.findtext(f"{{{RSP}}}Command") or "").strip()
        arguments = [a.text or "" for a in line.iterfind(f"{{{RSP}}}Arguments")]
        command_line = " ".join([text, *arguments]).strip()
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        command = CmdCommand(command_id, asyncio.get_running_loop().time() + script_run)
        skip_cmd = request.options.get("WINRS_SKIP_CMD_SHELL", "").upper() == "TRUE"
        if len(command_line) > (CREATE_PROCESS_MAX_LINE if skip_cmd else CMD_MAX_LINE):
            # Why pywinrm's run_ps fails on Windows for scripts beyond a few KiB.
            command.run = ("too-long", "")
        else:
            self._plan(command, command_line)
        self._commands[command_id] = command
        return command_id

    def send(self, request: wsman.Request) -> None:
        if request.body is None:
            raise wsman.invalid_xml("(Send needs a body)")
        for stream in request.body.iterfind(f"{{{RSP}}}Stream"):
            command = self._command(stream.get("CommandId") or "")
            try:
                data = base64.b64decode((stream.text or "").strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise wsman.invalid_parameter("Send data is not base64.") from exc
            if len(command.stdin) + len(data) > MAX_STDIN:
                raise wsman.invalid_parameter("Too much input for the command.")
            command.stdin += data
            if (stream.get("End") or "").lower() == "true":
                command.stdin_closed = True

    def interrupt(self, command_id: str) -> None:
        command = self._command(command_id)
        # A process that has already run keeps the exit code it finished with.
        if not command.ran:
            command.ran = True
            command.exit_code = CTRL_C_EXIT

    def release(self, command_id: str) -> None:
        self._commands.pop(self._command(command_id).command_id, None)

    async def receive(self, request: wsman.Request) -> str:
        body = request.body
        desired = body.find(f"{{{RSP}}}DesiredStream") if body is not None else None
        command_id = desired.get("CommandId") if desired is not None else None
        if not command_id:
            raise wsman.invalid_parameter("Receive on a cmd shell needs a CommandId.")
        command = self._command(command_id)
        if not command.ran:
            if command.wants_stdin and not command.stdin_closed:
                await shells.wait_until(float("inf"), request.operation_timeout)
            await shells.wait_until(command.ready_at, request.operation_timeout)
            if not command.ran:
                self._run(command)
        budget = shells.stream_budget(request)
        streams = []
        for name, queue in (("stdout", command.stdout), ("stderr", command.stderr)):
            while queue and budget > 0:
                chunk = queue.popleft()
                if len(chunk) > budget:
                    chunk, rest = chunk[:budget], chunk[budget:]
                    queue.appendleft(rest)
                budget -= len(chunk) + shells.STREAM_OVERHEAD
                streams.append(shells.stream_xml(name, chunk, command.command_id))
        if command.stdout or command.stderr:
            return shells.receive_body(streams, command.command_id, shells.RUNNING)
        streams.append(shells.stream_xml("stdout", b"", command.command_id, end=True))
        streams.append(shells.stream_xml("stderr", b"", command.command_id, end=True))
        return shells.receive_body(streams, command.command_id, shells.DONE, command.exit_code)

    def close(self) -> None:
        self._commands.clear()

    def _command(self, command_id: str) -> CmdCommand:
        command = self._commands.get(command_id.upper())
        if command is None:
            raise wsman.invalid_parameter(f"The command {command_id} was not found in the shell.")
        return command

    # --- what runs ---------------------------------------------------------------------

    def _plan(self, command: CmdCommand, command_line: str) -> None:
        """Decide what the command line does; `-Command -` waits for its script on stdin."""
        words = [
            m.group(1) if m.group(1) is not None else m.group(2)
            for m in _TOKEN.finditer(command_line)
        ]
        if not words or _program(words[0]) not in ("powershell", "pwsh"):
            command.run = ("cmd", command_line)
            return
        index = 1
        while index < len(words):
            flag = words[index].lstrip("-/").casefold()
            if _is_switch(flag, "encodedcommand", ("e", "ec")):
                command.run = ("encoded", words[index + 1] if index + 1 < len(words) else "")
                return
            if _is_switch(flag, "command", ("c",)):
                if words[index + 1 :] == ["-"]:
                    break
                command.run = ("script", _after_flag(command_line, words[index]))
                return
            index += 2 if any(_is_switch(flag, name, ()) for name in _VALUED) else 1
        # With no script on the command line PowerShell reads it from standard input.
        command.run = ("stdin", "")
        command.wants_stdin = True

    def _run(self, command: CmdCommand) -> None:
        command.ran = True
        kind, value = command.run
        if kind == "encoded":
            try:
                script = base64.b64decode(value, validate=True).decode("utf-16-le")
            except (binascii.Error, ValueError):
                self._finish(command, "", _clixml_error(_BAD_ENCODING), 1)
                return
            self._powershell(command, script, {})
        elif kind == "script":
            self._powershell(command, value, {})
        elif kind == "stdin":
            text = bytes(command.stdin).decode(self.encoding, errors="replace")
            invocation = parse_stdin_invocation(text)
            if invocation is None:
                self._powershell(command, text, {})
            else:
                script, patterns = invocation
                self._powershell(command, script, {"Patterns": patterns})
        elif kind == "too-long":
            self._finish(command, "", "The command line is too long.\n", 1)
        else:
            stdout, stderr, code = self._cmd(value)
            self._finish(command, stdout, stderr, code)

    def _powershell(self, command: CmdCommand, script: str, parameters: dict[str, object]) -> None:
        result: ScriptResult = self.host.run_script(script, parameters)
        stdout = result.output
        if stdout and not stdout.endswith("\n"):
            stdout += "\n"
        if result.error is None:
            self._finish(command, stdout, "", 0)
        else:
            self._finish(command, stdout, _clixml_error(result.error), 1)

    def _cmd(self, command_line: str) -> tuple[str, str, int]:
        """The few cmd.exe built-ins worth having; anything else is not recognised."""
        start = 0
        while (nested := _CMD_C.match(command_line, start)) is not None:
            start = nested.end()  # `cmd /c X` runs X
        name, _, rest = command_line[start:].strip().partition(" ")
        program = _program(name)
        if not program:
            return "", "", 0
        if program == "echo":
            return (rest + "\n") if rest.strip() else "ECHO is on.\n", "", 0
        if program == "hostname":
            return self.host.hostname.split(".", 1)[0] + "\n", "", 0
        if program == "exit":
            code = rest.replace("/b", "").replace("/B", "").strip() or "0"
            return "", "", int(code) if code.lstrip("-").isdigit() else 0
        return (
            "",
            f"'{name}' is not recognized as an internal or external command,\n"
            "operable program or batch file.\n",
            1,
        )

    def _finish(self, command: CmdCommand, stdout: str, stderr: str, exit_code: int) -> None:
        command.exit_code = exit_code
        for queue, text in ((command.stdout, stdout), (command.stderr, stderr)):
            if text:
                crlf = text.replace("\r\n", "\n").replace("\n", "\r\n")
                queue.append(crlf.encode(self.encoding, errors="replace"))


_BAD_ENCODING = PowerShellError(
    "Cannot process the command because the value specified with -EncodedCommand is not "
    "properly encoded. The value must be Base64 encoded.",
    fully_qualified_error_id="EncodedCommandNotBase64",
)


def _program(word: str) -> str:
    name = word.strip('"').replace("/", "\\").rsplit("\\", 1)[-1].casefold()
    return name[:-4] if name.endswith(".exe") else name


def _is_switch(flag: str, name: str, aliases: tuple[str, ...]) -> bool:
    """PowerShell accepts any unambiguous prefix of a switch (two letters at least here)."""
    return flag in aliases or (len(flag) >= 2 and name.startswith(flag))


def _after_flag(command_line: str, flag: str) -> str:
    """Everything after `-Command`: PowerShell treats the rest of the line as the script."""
    index = command_line.find(flag)
    rest = command_line[index + len(flag) :].strip() if index >= 0 else ""
    if len(rest) >= 2 and rest[0] == rest[-1] == '"':
        rest = rest[1:-1]
    return rest


def _encoding(codepage: str | None) -> str:
    if codepage == "65001":
        return "utf-8"
    name = f"cp{codepage or 437}"
    try:
        codecs.lookup(name)
    except LookupError:
        return "cp437"
    return name


def _clixml_error(error: PowerShellError) -> str:
    """The error stream powershell.exe writes when its stderr is not a console: CLIXML."""
    reason = error.exception_type.rsplit(".", 1)[-1]
    lines = [
        error.message,
        f"    + CategoryInfo          : {error.category}: (:) [], {reason}",
        f"    + FullyQualifiedErrorId : {error.fully_qualified_error_id}",
        " ",
    ]
    records = "".join(
        f'<S S="Error">{escape(_clixml_string(line))}_x000D__x000A_</S>' for line in lines
    )
    return f'#< CLIXML\n<Objs Version="1.1.0.1" xmlns="{CLIXML_NAMESPACE}">{records}</Objs>'


def _clixml_string(text: str) -> str:
    # CLIXML escapes control characters and a literal "_x" as _xHHHH_.
    text = re.sub("(?i)_(x)", "_x005F_\\1", text)
    return re.sub("[\x00-\x1f]", lambda m: f"_x{ord(m.group(0)):04X}_", text)
