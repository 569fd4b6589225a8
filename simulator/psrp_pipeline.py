"""What a PSRP pipeline asks for (its commands and arguments) and the ErrorRecord it fails with."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from pypsrp.complex_objects import ErrorRecord, GenericComplexObject
from pypsrp.serializer import Serializer

from simulator.behaviour import PowerShellError
from simulator.psrp_wire import PSRPError

# ErrorCategory names as PowerShell numbers them.
ERROR_CATEGORIES = {
    name: number
    for number, name in enumerate(
        (
            "NotSpecified",
            "OpenError",
            "CloseError",
            "DeviceError",
            "DeadlockDetected",
            "InvalidArgument",
            "InvalidData",
            "InvalidOperation",
            "InvalidResult",
            "InvalidType",
            "MetadataError",
            "NotImplemented",
            "NotInstalled",
            "ObjectNotFound",
            "OperationStopped",
            "OperationTimeout",
            "SyntaxError",
            "ParserError",
            "PermissionDenied",
            "ResourceBusy",
            "ResourceExists",
            "ResourceUnavailable",
            "ReadError",
            "WriteError",
            "FromStdErr",
            "SecurityError",
            "ProtocolError",
            "ConnectionError",
            "AuthenticationError",
            "LimitsExceeded",
            "QuotaExceeded",
            "NotEnabled",
        )
    )
}


@dataclass(slots=True)
class Invocation:
    """One command of a pipeline statement: a cmdlet or a script, with its arguments."""

    name: str
    is_script: bool
    named: dict[str, object] = field(default_factory=dict)
    positional: list[object] = field(default_factory=list)

    def argument(self, name: str) -> object | None:
        for key, value in self.named.items():
            if key.casefold() == name.casefold():
                return value
        return None


def read_pipeline(body: ET.Element) -> tuple[list[list[Invocation]], bool]:
    """The statements of a CREATE_PIPELINE message, and whether it takes no input.

    pypsrp cannot deserialize this message server-side, so the CLIXML is walked here and
    only the argument values go through pypsrp's Serializer.
    """
    serializer = Serializer()
    # TNRef elements may point at a type list defined anywhere earlier in the message.
    for tn in body.iter("TN"):
        serializer.tn[tn.get("RefId", "")] = [t.text or "" for t in tn.findall("T")]
    no_input = (body.findtext("MS/B[@N='NoInput']") or "true").lower() == "true"
    powershell = body.find("MS/Obj[@N='PowerShell']/MS")
    if powershell is None:
        raise PSRPError("CREATE_PIPELINE has no PowerShell object")
    statements = []
    extra = powershell.findall("Obj[@N='ExtraCmds']/LST/Obj")
    for statement in extra or [powershell]:
        commands = statement.findall("Obj[@N='Cmds']/LST/Obj") or statement.findall(
            "MS/Obj[@N='Cmds']/LST/Obj"
        )
        statements.append([_read_command(command, serializer) for command in commands])
    if not any(statements):
        raise PSRPError("CREATE_PIPELINE has no commands")
    return statements, no_input


def _read_command(element: ET.Element, serializer: Serializer) -> Invocation:
    cmd = element.find("MS/S[@N='Cmd']")
    if cmd is None:
        raise PSRPError("a pipeline command has no Cmd")
    is_script = (element.findtext("MS/B[@N='IsScript']") or "false").lower() == "true"
    invocation = Invocation(str(_value(cmd, serializer)), is_script)
    for argument in element.findall("MS/Obj[@N='Args']/LST/Obj"):
        key = argument.find("MS/*[@N='N']")
        value = argument.find("MS/*[@N='V']")
        decoded = _value(value, serializer) if value is not None else None
        if key is None or key.tag == "Nil":
            invocation.positional.append(decoded)
        else:
            invocation.named[str(_value(key, serializer))] = decoded
    return invocation


def _value(element: ET.Element, serializer: Serializer) -> object:
    try:
        return serializer.deserialize(element, clear=False)
    except Exception as exc:  # pypsrp's deserializer trusts its input; this input is hostile
        raise PSRPError(f"cannot read a pipeline value: {type(exc).__name__}") from exc


def script_of(invocation: Invocation) -> tuple[str, dict[str, object]]:
    """The script text and parameters an invocation amounts to."""
    if invocation.is_script:
        parameters = dict(invocation.named)
        if invocation.positional:
            parameters["args"] = list(invocation.positional)
        return invocation.name, parameters
    if invocation.name.casefold() in ("invoke-expression", "iex"):
        # pypsrp's execute_ps runs the script through Invoke-Expression -Command.
        command = invocation.argument("Command")
        if command is None and invocation.positional:
            command = invocation.positional[0]
        return str(command or ""), {}
    words = [invocation.name]
    for key, value in invocation.named.items():
        words.append(f"-{key}" if value is None else f"-{key} {_literal(value)}")
    words.extend(_literal(value) for value in invocation.positional)
    return " ".join(words), dict(invocation.named)


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "@(" + ",".join(_literal(v) for v in value) + ")"
    return "'" + str(value).replace("'", "''") + "'"


def error_record(error: PowerShellError) -> ErrorRecord:
    """The ErrorRecord a Windows host serialises for a terminating error."""
    exception = GenericComplexObject()
    exception.types = [error.exception_type, "System.SystemException", "System.Exception"]
    exception.types.append("System.Object")
    exception.to_string = error.message
    exception.adapted_properties = {
        "Message": error.message,
        "HResult": -2146233087,
        "Source": "System.Management.Automation",
    }
    category = ERROR_CATEGORIES.get(error.category, 0)
    reason = error.exception_type.rsplit(".", 1)[-1]
    record = ErrorRecord(  # type: ignore[no-untyped-call]
        exception=exception,
        invocation=False,
        fq_error=error.fully_qualified_error_id,
        category=category,
        activity="",
        reason=reason,
        target_name="",
        target_type="",
        message=f"{error.category}: (:) [], {reason}",
    )
    # pypsrp's ErrorRecord lists properties its constructor never sets.
    for name, _ in record._extended_properties:
        if not hasattr(record, name):
            setattr(record, name, None)
    record.extended_info_present = False
    record._to_string = error.message  # type: ignore[assignment]
    return record
