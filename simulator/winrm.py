"""A simulated host's WinRM service, misbehaving as the host's current fault says.

WS-Management over HTTP (5985, message encryption) and HTTPS (5986), NTLM, Negotiate and
Basic authentication, the cmd shell and the PowerShell plugin.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from collectors.wsman_envelopes import COMMAND, CREATE, DELETE, RECEIVE, RSP
from simulator import shells, wsman
from simulator.behaviour import Fault, SimulatedHost, Timing
from simulator.http_server import Connection, HTTPRequest, HTTPResponse, Site, listen
from simulator.psrp import POWERSHELL_URI, PowerShellShell
from simulator.psrp_wire import PSRPError
from simulator.tls import FleetCA
from simulator.winrm_auth import (
    NTLM_CREDENTIALS,
    Account,
    ConnectionAuth,
    EncryptionError,
    decrypt,
    encrypt,
    is_encrypted,
)
from simulator.winrs import CMD_URI, CmdShell

__all__ = ["MAX_SHELLS_PER_USER", "Account", "WinRMEndpoint", "start_winrm"]

log = logging.getLogger(__name__)

# Windows' default winrm/config/winrs MaxShellsPerUser.
MAX_SHELLS_PER_USER = 30
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
PATH = "/wsman"
_POWERSHELL_PREFIX = "http://schemas.microsoft.com/powershell/"
_CREATION_XML = "{http://schemas.microsoft.com/powershell}creationXml"


class WinRMEndpoint:
    """The WinRM listeners of one simulated host."""

    def __init__(self, host: SimulatedHost, address: str, account: Account, ca: FleetCA | None):
        self.host = host
        self.address = address
        self.http_port: int | None = None
        self.https_port: int | None = None
        self.requests_served = 0  # HTTP requests answered (or swallowed), for load figures
        self._account = account
        self._ca = ca
        self._servers: list[asyncio.Server] = []
        self._shells: dict[str, shells.Shell] = {}
        self._closed = False
        self._site = Site(
            self._handle,
            black_hole=lambda: host.fault is Fault.BLACK_HOLE,
            refuse=lambda: host.fault is Fault.POWERED_OFF,
            tls_context=self._tls_context if ca is not None else None,
        )

    @property
    def open_shells(self) -> int:
        """Shells currently open on this host (a client that leaks them shows here)."""
        return len(self._shells)

    async def close(self) -> None:
        """Stop listening, drop every connection and forget every shell; the ports are free
        again when this returns, so the host can be powered on again at once."""
        if self._closed:
            return
        self._closed = True
        for server in self._servers:
            server.close()
        for connection in list(self._site.connections):
            connection.shut()
        for server in self._servers:
            await server.wait_closed()
        for shell in list(self._shells.values()):
            self._forget(shell)
        NTLM_CREDENTIALS.unregister(self._account)

    def _tls_context(self) -> ssl.SSLContext:
        assert self._ca is not None
        return self._ca.server_context(self.host.hostname, self.address)

    # --- HTTP ----------------------------------------------------------------------------

    async def _handle(self, request: HTTPRequest, connection: Connection) -> HTTPResponse | None:
        self.requests_served += 1
        fault = self.host.fault
        if fault is Fault.BLACK_HOLE:
            return None
        timing = self.host.timing()
        if timing.round_trip > 0:
            await asyncio.sleep(timing.round_trip)
        if request.target.split("?", 1)[0].rstrip("/").lower() != PATH:
            return HTTPResponse(404, [("Content-Type", "text/html; charset=us-ascii")])
        if request.method != "POST":
            return HTTPResponse(405, [("Allow", "POST")])
        auth = connection.state.get("auth")
        if not isinstance(auth, ConnectionAuth):
            auth = connection.state["auth"] = ConnectionAuth(self._account, tls=request.tls)
        verdict = auth.check(
            request.header("Authorization"), rejected=fault is Fault.BAD_CREDENTIALS
        )
        if not verdict.authenticated:
            return HTTPResponse(401, list(verdict.headers))
        headers = list(verdict.headers)
        content_type = request.header("Content-Type") or ""
        encrypted = is_encrypted(content_type)
        if encrypted:
            if auth.encryption is None:
                return HTTPResponse(400, headers, close=True)
            try:
                envelope = decrypt(auth.encryption, request.body, content_type)
            except EncryptionError as exc:
                log.debug("%s: %s", self.host.hostname, exc)
                return HTTPResponse(400, headers, close=True)
        elif not request.body:
            # The empty POST clients send to set up an NTLM session for encryption.
            return HTTPResponse(200, headers)
        elif not request.tls:
            # AllowUnencrypted=false: a clear-text envelope over HTTP is refused.
            return HTTPResponse(500, headers)
        else:
            envelope = request.body
        status, reply = await self._wsman(envelope, request, timing)
        if encrypted and auth.encryption is not None:
            reply_type, reply = encrypt(auth.encryption, reply)
        else:
            reply_type = SOAP_CONTENT_TYPE
        headers.append(("Content-Type", reply_type))
        return HTTPResponse(status, headers, reply, reset_midway=fault is Fault.RESET)

    # --- WS-Management -------------------------------------------------------------------

    async def _wsman(self, data: bytes, http: HTTPRequest, timing: Timing) -> tuple[int, bytes]:
        machine = self.host.hostname
        try:
            request = wsman.parse_request(data)
        except wsman.WSManError as fault:
            return 500, wsman.fault_envelope(fault, machine, None)
        try:
            action, body = await self._dispatch(request, http, timing)
        except wsman.WSManError as fault:
            return 500, wsman.fault_envelope(fault, machine, request.message_id)
        except PSRPError as exc:
            invalid = wsman.invalid_parameter(f"The PowerShell data is not valid: {exc}")
            return 500, wsman.fault_envelope(invalid, machine, request.message_id)
        return 200, wsman.envelope(request, action, body)

    async def _dispatch(
        self, request: wsman.Request, http: HTTPRequest, timing: Timing
    ) -> tuple[str, str]:
        action = request.action
        if action == CREATE:
            return f"{action}Response", await self._create(request, http, timing)
        shell = self._shell(request)
        if action == DELETE:
            self._forget(shell)
            return f"{action}Response", ""
        shell.busy += 1
        try:
            return await self._operate(shell, request, timing)
        finally:
            shell.busy -= 1
            self._arm_expiry(shell)

    async def _operate(
        self, shell: shells.Shell, request: wsman.Request, timing: Timing
    ) -> tuple[str, str]:
        action = request.action
        if action == COMMAND:
            command_id = wsman.xml_text(shell.command(request, timing.script_run))
            body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
            return f"{action}Response", body + "</rsp:CommandResponse>"
        if action == wsman.SEND:
            shell.send(request)
            return f"{action}Response", "<rsp:SendResponse/>"
        if action == RECEIVE:
            return f"{action}Response", await shell.receive(request)
        if action == wsman.SIGNAL:
            shell.signal(request)
            return f"{action}Response", "<rsp:SignalResponse/>"
        raise wsman.unsupported_action(action)

    async def _create(self, request: wsman.Request, http: HTTPRequest, timing: Timing) -> str:
        uri = request.resource_uri
        is_cmd = uri.casefold() == CMD_URI.casefold()
        is_powershell = uri.casefold() == POWERSHELL_URI.casefold()
        if not (is_cmd or is_powershell):
            raise wsman.invalid_resource(uri)
        body = request.body
        if body is None or body.tag != f"{{{RSP}}}Shell":
            raise wsman.invalid_xml("(Create needs a Shell)")
        if self.host.fault is Fault.QUOTA_EXCEEDED or len(self._shells) >= MAX_SHELLS_PER_USER:
            raise wsman.shells_exceeded(MAX_SHELLS_PER_USER)
        loop = asyncio.get_running_loop()
        # Starting the shell's host process is what takes the time on Windows.
        await shells.wait_until(loop.time() + timing.runspace_open, request.operation_timeout)
        shell: shells.Shell
        if is_powershell:
            creation = body.findtext(_CREATION_XML)
            if not creation:
                raise wsman.invalid_xml("(a PowerShell shell needs creationXml)")
            shell = PowerShellShell(
                self.host,
                shell_id=body.get("ShellId"),
                creation_xml=creation,
                owner=self._account.username,
                client_ip=http.peer,
            )
        else:
            shell = CmdShell(
                self.host,
                owner=self._account.username,
                client_ip=http.peer,
                codepage=request.options.get("WINRS_CODEPAGE"),
            )
        key = shell.shell_id.upper()
        if key in self._shells:
            raise wsman.invalid_parameter(f"A shell with ShellId {shell.shell_id} already exists.")
        # The quota is checked again: the host may have filled up while this one started.
        if len(self._shells) >= MAX_SHELLS_PER_USER:
            raise wsman.shells_exceeded(MAX_SHELLS_PER_USER)
        self._shells[key] = shell
        shell.idle_timeout = shells.idle_timeout(body.findtext(f"{{{RSP}}}IdleTimeOut"))
        self._arm_expiry(shell)
        scheme = "https" if http.tls else "http"
        port = self.https_port if http.tls else self.http_port
        return shell.created_body(f"{scheme}://{self.address}:{port}{PATH}")

    def _arm_expiry(self, shell: shells.Shell) -> None:
        """(Re)start the shell's idle clock: a timer, not a task, so idle shells cost nothing."""
        if shell.expiry is not None:
            shell.expiry.cancel()
            shell.expiry = None
        if self._closed or self._shells.get(shell.shell_id.upper()) is not shell:
            return  # deleted while the operation ran
        loop = asyncio.get_running_loop()
        shell.expiry = loop.call_later(shell.idle_timeout, self._expire, shell)

    def _expire(self, shell: shells.Shell) -> None:
        if shell.busy:
            self._arm_expiry(shell)
        elif self._shells.get(shell.shell_id.upper()) is shell:
            log.debug("%s: shell %s idle too long", self.host.hostname, shell.shell_id)
            self._forget(shell)

    def _forget(self, shell: shells.Shell) -> None:
        self._shells.pop(shell.shell_id.upper(), None)
        if shell.expiry is not None:
            shell.expiry.cancel()
            shell.expiry = None
        shell.close()

    def _shell(self, request: wsman.Request) -> shells.Shell:
        shell_id = request.shell_id or ""
        shell = self._shells.get(shell_id.upper())
        if shell is None:
            raise wsman.shell_not_found(shell_id)
        return shell


async def start_winrm(
    host: SimulatedHost,
    *,
    address: str,
    account: Account,
    http_port: int | None = 5985,
    https_port: int | None = 5986,
    ca: FleetCA | None = None,
) -> WinRMEndpoint:
    """Start a host's WinRM listeners; a port of None leaves that scheme off, 0 picks a free
    port. HTTPS needs `ca`: its certificate is issued on the first HTTPS connection."""
    if https_port is not None and ca is None:
        raise ValueError(f"{host.hostname}: HTTPS on {address} needs a FleetCA (ca=...)")
    endpoint = WinRMEndpoint(host, address, account, ca)
    NTLM_CREDENTIALS.register(account)
    try:
        if http_port is not None:
            server = await listen(endpoint._site, address, http_port, tls=False)
            endpoint._servers.append(server)
            endpoint.http_port = server.sockets[0].getsockname()[1]
        if https_port is not None:
            server = await listen(endpoint._site, address, https_port, tls=True)
            endpoint._servers.append(server)
            endpoint.https_port = server.sockets[0].getsockname()[1]
    except BaseException:
        await endpoint.close()
        raise
    return endpoint
