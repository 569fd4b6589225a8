"""The WinRM collector: the probe in a PowerShell runspace pool over WS-Management, no threads.

Everything runs on the event loop: psrpcore keeps the PSRP state, httpcore carries one
authenticated connection per probe, pyspnego does NTLM/Kerberos and message sealing.
CredSSP and certificate authentication still go through pypsrp in worker threads
(`collectors.winrm_pypsrp`), because this path does not speak them yet.

Exceptions become outcomes in one place, `_translate`:

    connect refused or timed out, no route, name
             not found, TLS cut before any answer, a
             connection dropped before it answered .. unreachable
    the deadline (TimeoutError),
             OperationTimeoutError ................. timeout
    AuthRejectedError, spnego errors ............... auth_failed
    WSManFaultError (quota, access denied), HTTP
             statuses, TLS refusals, later breaks,
             bad envelopes or sealing, PSRP errors .. protocol_error
    ScriptFailedError (PowerShell error, bad or
             oversized output) ..................... probe_error
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpcore
import psrpcore
import spnego.exceptions

from collectors.base import Outcome, ScanResult, Target, Timeouts
from collectors.credentials import Credentials
from collectors.facts import Facts, ProbeOutputError, parse_probe_output
from collectors.failures import causes, certificate_problem, dropped, root_cause, short
from collectors.probe import probe_script
from collectors.psrp_run import (
    Limits,
    OperationTimeoutError,
    PoolBrokenError,
    ScriptFailedError,
    ScriptRun,
    parameters_for,
)
from collectors.winrm_config import NAME, NAME_HTTPS, WinRMConfig
from collectors.wsman_envelopes import EnvelopeError, WSManFaultError
from collectors.wsman_http import (
    SESSION_AUTH,
    AuthRejectedError,
    Endpoint,
    HTTPStatusError,
    Login,
    ReplyTooLargeError,
    WSManConnection,
)
from collectors.wsman_sealing import SealingError

if TYPE_CHECKING:
    from collectors.winrm_pypsrp import PypsrpWinRM

__all__ = ["NAME", "NAME_HTTPS", "WinRMCollector", "WinRMConfig"]

log = logging.getLogger(__name__)

# Authentication only pypsrp speaks here.
_PYPSRP_AUTH = ("credssp", "certificate")


class _ConfigurationError(Exception):
    """The profile cannot be used over this transport; the message says why."""


class WinRMCollector:
    """Probes hosts over WinRM: one runspace pool per probe, opened, used once and closed."""

    def __init__(self, config: WinRMConfig | None = None, *, script: str | None = None) -> None:
        self.config = config or WinRMConfig()
        self.name = self.config.transport
        self._script = script
        self._tls: ssl.SSLContext | None = None
        self._warned = False
        self._pypsrp: PypsrpWinRM | None = None
        self._limits = Limits(
            max_output_bytes=self.config.max_output_bytes,
            operation_s=0.0,
            idle_timeout_s=self.config.idle_timeout_s,
        )

    async def collect(
        self, target: Target, credentials: Credentials, timeouts: Timeouts
    ) -> ScanResult:
        if credentials.auth in _PYPSRP_AUTH:
            if self._pypsrp is None:
                # Loaded on first use: pypsrp and requests cost a sweep that never needs them.
                from collectors.winrm_pypsrp import PypsrpWinRM

                self._pypsrp = PypsrpWinRM(self.config, script=self._script)
            return await self._pypsrp.collect(target, credentials, timeouts)
        started = time.monotonic()
        connection: WSManConnection | None = None
        try:
            connection = self._connection(target, credentials, timeouts)
            async with asyncio.timeout(timeouts.total):
                output = await self._probe(connection, target, timeouts)
            facts = _parse(output)
        except Exception as exc:  # every failure becomes an outcome; CancelledError passes
            outcome, reason = _translate(exc, target, timeouts, credentials.profile, connection)
            log.debug("%s probe of %s: %s (%s)", self.name, target.hostname, outcome, reason)
            return ScanResult(
                outcome=outcome,
                transport=self.name,
                duration_s=time.monotonic() - started,
                reason=reason,
            )
        finally:
            if connection is not None:
                await connection.aclose()
        return ScanResult(
            outcome=Outcome.OK,
            transport=self.name,
            duration_s=time.monotonic() - started,
            facts=facts,
        )

    async def aclose(self) -> None:
        """Stop pypsrp's worker threads, if any probe needed them."""
        if self._pypsrp is not None:
            await self._pypsrp.aclose()

    async def _probe(self, connection: WSManConnection, target: Target, timeouts: Timeouts) -> str:
        limits = Limits(
            max_output_bytes=self._limits.max_output_bytes,
            operation_s=timeouts.operation,
            idle_timeout_s=self._limits.idle_timeout_s,
        )
        run = ScriptRun(connection, limits)
        try:
            output = await run.run(self._script or probe_script(), parameters_for(target.patterns))
        except TimeoutError:
            raise  # the deadline: no time left to ask the host for anything
        except Exception:
            await self._clean_up(run, target)
            raise
        await self._clean_up(run, target)
        return output

    async def _clean_up(self, run: ScriptRun, target: Target) -> None:
        # Closing gets time of its own, so a merely slow host is not left with the shell;
        # its idle timeout ends a shell that still could not be closed.
        try:
            async with asyncio.timeout(self.config.cleanup_grace_s):
                await run.close()
        except Exception as exc:  # the probe's own outcome matters more than the clean-up's
            log.debug("could not close the runspace pool on %s: %s", target.hostname, exc)

    def _connection(
        self, target: Target, credentials: Credentials, timeouts: Timeouts
    ) -> WSManConnection:
        auth = credentials.auth
        if auth == "basic" and not self.config.https:
            # Basic over plain HTTP would send the password readable to anyone on the path.
            raise _ConfigurationError("basic authentication is only allowed over winrm-https")
        if auth not in (*SESSION_AUTH, "basic"):
            raise _ConfigurationError(f"authentication {auth!r} is not supported over WinRM")
        endpoint = Endpoint(
            dial=target.dial,
            port=target.port,
            hostname=target.hostname,
            path=self.config.path,
            tls=self._tls_context() if self.config.https else None,
        )
        password = credentials.password.reveal() if credentials.password else None
        return WSManConnection(
            endpoint,
            Login(auth=auth, username=credentials.username, password=password),
            connect_timeout=min(timeouts.connect, timeouts.total),
            max_reply_bytes=2 * self._limits.max_envelope_size,
            on_authenticated=target.authenticated,
        )

    def _tls_context(self) -> ssl.SSLContext:
        """One TLS context per collector: building one costs more than a whole probe."""
        if self._tls is None:
            self._tls = _tls_context(self.config.ca_file, self.config.verify_tls)
            if not self.config.verify_tls and not self._warned:
                self._warned = True
                log.warning(
                    "WinRM over HTTPS WITHOUT certificate verification (winrm.verify_tls ="
                    " false): anyone on the path can impersonate hosts and read the probe's"
                    " credentials"
                )
        return self._tls


def _tls_context(ca_file: Path | None, verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _parse(output: str) -> Facts:
    try:
        return parse_probe_output(output)
    except ProbeOutputError as exc:
        raise ScriptFailedError(exc.reason) from exc


def _translate(
    exc: BaseException,
    target: Target,
    timeouts: Timeouts,
    profile: str,
    connection: WSManConnection | None,
) -> tuple[Outcome, str]:
    """The one place where a failure becomes an outcome with a short reason."""
    where = f"{target.dial}:{target.port}"
    answered = connection is not None and connection.answered
    connected = connection is not None and connection.connected
    if isinstance(exc, ScriptFailedError):
        return Outcome.PROBE_ERROR, short(str(exc))
    if isinstance(exc, _ConfigurationError):
        return Outcome.PROTOCOL_ERROR, str(exc)
    if isinstance(exc, TimeoutError | httpcore.ReadTimeout | httpcore.WriteTimeout):
        if not answered:
            return Outcome.TIMEOUT, f"{where} accepted the connection but never answered"
        return Outcome.TIMEOUT, f"no complete answer within {timeouts.total:g}s"
    if isinstance(exc, OperationTimeoutError):
        return Outcome.TIMEOUT, f"the probe did not finish within {timeouts.operation:g}s"
    if isinstance(exc, AuthRejectedError):
        return Outcome.AUTH_FAILED, f"{where} refused the credentials of profile {profile!r}"
    if isinstance(exc, spnego.exceptions.SpnegoError):
        return Outcome.AUTH_FAILED, short(f"authentication with profile {profile!r}: {exc}")
    if isinstance(exc, WSManFaultError):
        return Outcome.PROTOCOL_ERROR, short(f"WS-Management fault {exc.code}: {exc.reason}")
    if isinstance(exc, HTTPStatusError):
        return Outcome.PROTOCOL_ERROR, f"HTTP {exc.status} from {where}"
    if isinstance(exc, httpcore.ConnectTimeout):
        if connected:  # TCP connected, TLS never finished
            return Outcome.TIMEOUT, f"{where} accepted the connection but never answered"
        return Outcome.UNREACHABLE, f"connect to {where} timed out"
    if isinstance(exc, httpcore.ConnectError):
        problem = certificate_problem(exc)
        if problem is not None:
            return Outcome.PROTOCOL_ERROR, short(f"TLS with {where}: {problem}")
        if _tls_refused(exc) and not dropped(exc):
            return Outcome.PROTOCOL_ERROR, short(f"TLS with {where}: {root_cause(exc)}")
        return Outcome.UNREACHABLE, short(f"cannot connect to {where}: {_reason(exc)}")
    if isinstance(exc, httpcore.NetworkError | httpcore.RemoteProtocolError):
        if not answered:
            return Outcome.UNREACHABLE, short(f"cannot connect to {where}: {_reason(exc)}")
        return Outcome.PROTOCOL_ERROR, short(f"connection to {where} broke: {_reason(exc)}")
    if isinstance(
        exc,
        EnvelopeError | SealingError | ReplyTooLargeError | PoolBrokenError,
    ):
        return Outcome.PROTOCOL_ERROR, short(f"{where}: {exc}")
    if isinstance(exc, psrpcore.PSRPCoreError):
        return Outcome.PROTOCOL_ERROR, short(f"{where} sent PowerShell data that cannot be read")
    log.warning("unexpected %s while probing %s over WinRM", type(exc).__name__, target.hostname)
    return Outcome.PROTOCOL_ERROR, short(f"{type(exc).__name__}: {exc}")


def _tls_refused(exc: BaseException) -> bool:
    return any(isinstance(cause, ssl.SSLError) for cause in causes(exc))


def _reason(exc: BaseException) -> str:
    # httpcore's own message (e.g. "[Errno 111] Connection refused") once the chain has none.
    cause = root_cause(exc)
    if cause in ("ConnectError", "ReadError", "WriteError", "RemoteProtocolError"):
        return str(exc) or cause
    return cause
