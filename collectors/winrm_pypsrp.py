"""WinRM through pypsrp, for CredSSP and certificate authentication, in worker threads.

The event-loop path (`collectors.winrm`) serves every other authentication. pypsrp blocks,
so each probe runs in a worker thread of a bounded pool; the event loop only
waits. Every HTTP request a probe makes is bounded by what is left of its deadline, so a
host that accepts and never answers releases its thread soon after the deadline too.

Exceptions become outcomes in one place, `_translate`:

    _ConnectTimeoutError, refused, no route,
             name not found, or a connection the
             host drops before it ever answered .... unreachable
    _ReadTimeoutError, _DeadlineExceededError,
             _OperationTimeoutError ................ timeout
    pypsrp AuthenticationError, spnego errors ...... auth_failed
    pypsrp WSManFaultError (quota, access denied),
             WinRMTransportError, WinRMError,
             TLS failures, later resets, bad XML ... protocol_error
    _ProbeFailedError (PowerShell error, bad or
             oversized output) ..................... probe_error
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import ParseError

import requests
import requests.adapters
import spnego.exceptions
import urllib3.exceptions
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from collectors.base import Outcome, ScanResult, Target, Timeouts
from collectors.credentials import Credentials
from collectors.facts import Facts, ProbeOutputError, parse_probe_output
from collectors.failures import causes, dropped, root_cause, short, tls_detail
from collectors.probe import probe_script
from collectors.winrm_config import WinRMConfig

log = logging.getLogger(__name__)

# WS-Management's "operation timed out, poll again" fault: a Receive with nothing to say yet.
_WSMAN_OPERATION_TIMEOUT = 2150858793
# Longest single Receive poll; the host answers sooner when the script finishes.
_POLL_S = 20


class PypsrpWinRM:
    """Probes hosts over WinRM with pypsrp: one runspace pool per probe, in a worker thread."""

    def __init__(self, config: WinRMConfig | None = None, *, script: str | None = None) -> None:
        self.config = config or WinRMConfig()
        self.name = self.config.transport
        self._script = script
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None

    async def open(self) -> None:
        """Start the worker threads' pool; called by the first probe if not before."""
        if self._executor is not None:
            return
        if self.config.https and not self.config.verify_tls:
            log.warning(
                "WinRM over HTTPS WITHOUT certificate verification (winrm.verify_tls = false):"
                " anyone on the path can impersonate hosts and read the probe's credentials"
            )
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.config.max_threads, thread_name_prefix=f"cmscan-{self.name}"
        )
        # Admission is counted here, not by the executor's queue, so a probe's deadline
        # starts when a thread is free for it and a waiting probe never times out unseen.
        self._slots = asyncio.Semaphore(self.config.max_threads)

    async def aclose(self) -> None:
        """Stop the worker threads; probes still running end at their own deadlines."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def collect(
        self, target: Target, credentials: Credentials, timeouts: Timeouts
    ) -> ScanResult:
        await self.open()
        assert self._executor is not None
        assert self._slots is not None
        # Held locally: aclose() may run while this probe waits for a slot.
        executor, slots = self._executor, self._slots
        await slots.acquire()
        started = time.monotonic()
        deadline = _Deadline(timeouts)
        loop = asyncio.get_running_loop()
        try:
            future = executor.submit(
                _probe, self.config, target, credentials, deadline, self._script or probe_script()
            )
        except BaseException:
            slots.release()
            raise
        future.add_done_callback(lambda _: _release_from_thread(loop, slots))
        try:
            async with asyncio.timeout(timeouts.total):
                output = await asyncio.wrap_future(future)
            facts = _parse(output)
        except Exception as exc:  # every failure becomes an outcome; CancelledError passes
            deadline.expire()
            outcome, reason = _translate(
                exc, target, timeouts, credentials.profile, answered=deadline.answered
            )
            log.debug("%s probe of %s: %s (%s)", self.name, target.hostname, outcome, reason)
            return ScanResult(
                outcome=outcome,
                transport=self.name,
                duration_s=time.monotonic() - started,
                reason=reason,
            )
        except BaseException:
            deadline.expire()  # cancelled: the worker stops at its next request
            raise
        return ScanResult(
            outcome=Outcome.OK,
            transport=self.name,
            duration_s=time.monotonic() - started,
            facts=facts,
        )


def _release_from_thread(loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore) -> None:
    # The slot frees when the worker really finishes, not when the caller gave up on it.
    with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting for the slot
        loop.call_soon_threadsafe(slots.release)


class _Deadline:
    """The end of one probe, shared by its worker thread and the event loop."""

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self._lock = threading.Lock()
        self._end = time.monotonic() + timeouts.total
        self._expired = False
        # Whether the host has answered any request: a connection it drops before its first
        # answer is a refusal (nothing usable listens), one dropped later a broken exchange.
        self.answered = False

    def remaining(self) -> float:
        with self._lock:
            return self._end - time.monotonic()

    def expire(self) -> None:
        """The caller has stopped waiting: refuse every further request."""
        with self._lock:
            self._expired = True
            self._end = min(self._end, time.monotonic())

    def allow_cleanup(self, grace: float) -> None:
        """Give closing the pool a little time of its own, unless the caller gave up."""
        with self._lock:
            if not self._expired:
                self._end = max(self._end, time.monotonic() + grace)


class _DeadlineExceededError(Exception):
    """A request would start after the probe's deadline."""


class _ConnectTimeoutError(Exception):
    """The TCP connection was not established within the connect timeout."""


class _ReadTimeoutError(Exception):
    """The host took longer to answer a request than the probe had left."""


class _OperationTimeoutError(Exception):
    """The probe ran longer than the operation timeout."""


class _ProbeFailedError(Exception):
    """The probe ran but gave nothing usable; the message is the short reason."""


class _ConfigurationError(Exception):
    """The profile cannot be used over this transport; the message says why."""


class _DeadlineAdapter(requests.adapters.BaseAdapter):
    """Bounds every request (including authentication legs) by the probe's remaining time."""

    def __init__(self, inner: requests.adapters.BaseAdapter, deadline: _Deadline) -> None:
        super().__init__()
        self._inner = inner
        self._deadline = deadline

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        remaining = self._deadline.remaining()
        if remaining <= 0:
            raise _DeadlineExceededError
        connect = min(self._deadline.timeouts.connect, remaining)
        read = remaining
        if isinstance(timeout, tuple) and timeout[1] is not None:
            read = min(timeout[1], remaining)
        elif isinstance(timeout, int | float):
            read = min(timeout, remaining)
        try:
            response = self._inner.send(request, stream, (connect, read), verify, cert, proxies)
        except requests.exceptions.ConnectTimeout as exc:
            # Re-raised as our own: pypsrp would log each timeout as an error with a
            # traceback and retry it, which a deadline has no time for.
            raise _ConnectTimeoutError from exc
        except requests.exceptions.ReadTimeout as exc:
            raise _ReadTimeoutError from exc
        self._deadline.answered = True
        # Authentication handlers resend through response.connection: keep them bounded too.
        setattr(response, "connection", self)  # noqa: B010 - requests types it HTTPAdapter
        return response

    def close(self) -> None:
        self._inner.close()


def _auth_options(config: WinRMConfig, credentials: Credentials) -> dict[str, Any]:
    auth = credentials.auth
    options: dict[str, Any] = {"auth": auth}
    if auth == "certificate":
        if not config.https:
            raise _ConfigurationError("certificate authentication needs winrm-https")
        options["certificate_pem"] = str(credentials.client_cert_file)
        options["certificate_key_pem"] = str(credentials.client_key_file)
        return options
    if auth == "basic" and not config.https:
        # Basic over plain HTTP would send the password readable to anyone on the path.
        raise _ConfigurationError("basic authentication is only allowed over winrm-https")
    if auth == "credssp" and importlib.util.find_spec("requests_credssp") is None:
        raise _ConfigurationError("credssp authentication needs the requests-credssp package")
    options["username"] = credentials.username
    options["password"] = credentials.password.reveal() if credentials.password else None
    return options


def _spn_options(target: Target, credentials: Credentials) -> dict[str, Any]:
    if target.address and credentials.auth in ("negotiate", "kerberos"):
        # Kerberos asks for a ticket to WSMAN/<name>; an address has no such principal.
        return {"negotiate_hostname_override": target.hostname}
    return {}


def _connection(
    config: WinRMConfig, target: Target, credentials: Credentials, deadline: _Deadline
) -> WSMan:
    timeouts = deadline.timeouts
    verify: bool | str = config.verify_tls
    if config.https and config.verify_tls and config.ca_file is not None:
        verify = str(config.ca_file)
    options: dict[str, Any] = {
        "port": target.port,
        "ssl": config.https,
        "path": config.path,
        # Over HTTP every message is encrypted with the session key (NTLM/Kerberos/CredSSP);
        # over HTTPS, TLS already is.
        "encryption": "auto" if config.https else "always",
        "cert_validation": verify if config.https else False,
        "operation_timeout": _POLL_S,
        "connection_timeout": max(1, round(timeouts.connect)),
        "read_timeout": max(1, round(timeouts.total)),
        "reconnection_retries": 0,
        "reconnection_backoff": 0.0,
        # WinRM goes straight to the host: a proxy meant for web traffic must not see it.
        "no_proxy": True,
        **_auth_options(config, credentials),
        **_spn_options(target, credentials),
    }
    wsman = WSMan(target.dial, **options)
    # pypsrp builds its requests session lazily; build it now to bound every adapter.
    session = wsman.transport._build_session()
    # The environment's proxy settings are already ignored (no_proxy); with trust_env on,
    # requests would still scan os.environ on every request, a third of a probe's CPU.
    session.trust_env = False
    for prefix, adapter in list(session.adapters.items()):
        if config.https and target.address and isinstance(adapter, requests.adapters.HTTPAdapter):
            # Dialling an address still checks the certificate (and sends SNI) for the name.
            adapter.poolmanager.connection_pool_kw["server_hostname"] = target.hostname
        session.mount(prefix, _DeadlineAdapter(adapter, deadline))
    wsman.transport.session = session
    return wsman


def _probe(
    config: WinRMConfig,
    target: Target,
    credentials: Credentials,
    deadline: _Deadline,
    script: str,
) -> str:
    """Open a runspace pool, run the probe, close the pool: blocking, in a worker thread."""
    wsman = _connection(config, target, credentials, deadline)
    pool = RunspacePool(wsman, idle_timeout=config.idle_timeout_s)
    try:
        pool.open()
        shell = PowerShell(pool)
        shell.add_script(script).add_parameter("Patterns", list(target.patterns))
        shell.begin_invoke()
        operation_end = time.monotonic() + deadline.timeouts.operation
        size = 0
        seen = 0
        while shell.state == PSInvocationState.RUNNING:
            left = min(operation_end - time.monotonic(), deadline.remaining())
            if left <= 0:
                raise _OperationTimeoutError
            try:
                shell.poll_invoke(timeout=max(1, min(_POLL_S, int(left))))
            except WSManFaultError as exc:
                if exc.code != _WSMAN_OPERATION_TIMEOUT:
                    raise
            for item in shell.output[seen:]:
                size += len(str(item).encode("utf-8", "surrogatepass"))
            seen = len(shell.output)
            if size > config.max_output_bytes:
                raise _ProbeFailedError(f"output exceeds the {config.max_output_bytes} byte limit")
        if shell.had_errors or shell.state == PSInvocationState.FAILED:
            raise _ProbeFailedError(f"probe failed: {_error_message(shell)}")
        return "\n".join(str(item) for item in shell.output)
    finally:
        deadline.allow_cleanup(config.cleanup_grace_s)
        _close_quietly(pool, target)
        wsman.close()


def _close_quietly(pool: RunspacePool, target: Target) -> None:
    try:
        pool.close()
    except Exception as exc:  # the probe's own outcome matters more than the clean-up's
        log.debug("could not close the runspace pool on %s: %s", target.hostname, exc)


def _error_message(shell: PowerShell) -> str:
    for record in shell.streams.error:
        for text in (_record_text(record), getattr(record, "message", None)):
            if text:
                return str(text)
    return "PowerShell reported an error without a message"


def _record_text(record: object) -> str:
    try:
        return str(record)
    except Exception:  # a record the deserialiser could not fill in
        return ""


def _parse(output: str) -> Facts:
    try:
        return parse_probe_output(output)
    except ProbeOutputError as exc:
        raise _ProbeFailedError(exc.reason) from exc


def _translate(
    exc: BaseException, target: Target, timeouts: Timeouts, profile: str, *, answered: bool
) -> tuple[Outcome, str]:
    """The one place where a failure becomes an outcome with a short reason."""
    where = f"{target.dial}:{target.port}"
    if isinstance(exc, _ProbeFailedError):
        return Outcome.PROBE_ERROR, short(str(exc))
    if isinstance(exc, _ConfigurationError):
        return Outcome.PROTOCOL_ERROR, str(exc)
    if isinstance(exc, TimeoutError | _DeadlineExceededError | _ReadTimeoutError):
        if not answered:
            return Outcome.TIMEOUT, f"{where} accepted the connection but never answered"
        return Outcome.TIMEOUT, f"no complete answer within {timeouts.total:g}s"
    if isinstance(exc, _OperationTimeoutError):
        return Outcome.TIMEOUT, f"the probe did not finish within {timeouts.operation:g}s"
    if isinstance(exc, AuthenticationError):
        return Outcome.AUTH_FAILED, f"{where} refused the credentials of profile {profile!r}"
    if isinstance(exc, spnego.exceptions.SpnegoError):
        return Outcome.AUTH_FAILED, short(f"authentication with profile {profile!r}: {exc}")
    if isinstance(exc, WSManFaultError):
        detail = exc.reason or exc.provider_fault or "no details"
        return Outcome.PROTOCOL_ERROR, short(f"WS-Management fault {exc.code}: {detail}")
    if isinstance(exc, WinRMTransportError):
        return Outcome.PROTOCOL_ERROR, f"HTTP {exc.code} from {where}"
    if isinstance(exc, requests.exceptions.SSLError):
        if not answered and dropped(exc):
            return Outcome.UNREACHABLE, short(f"cannot connect to {where}: {root_cause(exc)}")
        return Outcome.PROTOCOL_ERROR, short(f"TLS with {where}: {tls_detail(exc)}")
    if isinstance(exc, _ConnectTimeoutError):
        return Outcome.UNREACHABLE, f"connect to {where} timed out"
    if isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError
    ):
        if not answered or _never_connected(exc):
            return Outcome.UNREACHABLE, short(f"cannot connect to {where}: {root_cause(exc)}")
        return Outcome.PROTOCOL_ERROR, short(f"connection to {where} broke: {root_cause(exc)}")
    if isinstance(exc, WinRMError | ParseError | requests.exceptions.RequestException):
        return Outcome.PROTOCOL_ERROR, short(f"{type(exc).__name__}: {exc}")
    log.warning("unexpected %s while probing %s over WinRM", type(exc).__name__, target.hostname)
    return Outcome.PROTOCOL_ERROR, short(f"{type(exc).__name__}: {exc}")


def _never_connected(exc: BaseException) -> bool:
    return any(isinstance(cause, _NEVER_CONNECTED) for cause in causes(exc))


_NEVER_CONNECTED = (
    urllib3.exceptions.NewConnectionError,  # refused, no route (NameResolutionError is one)
    ConnectionRefusedError,
)
