"""A real OpenSSH server for tests: its own host key and config, on a free loopback port."""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from collectors.probe import SSH_COMMAND
from tests.support import free_port, missing, need_executable

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SSHServer:
    """A running sshd: where it listens, its host key, and a key that may log in."""

    port: int
    host_key: asyncssh.SSHKey
    client_key_file: Path
    user: str
    log_file: Path

    def known_hosts_line(self, name: str = "127.0.0.1", key: asyncssh.SSHKey | None = None) -> str:
        public = (key or self.host_key).export_public_key("openssh").decode().split()
        return f"[{name}]:{self.port} {public[0]} {public[1]}\n"

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")


def write_private_key(key: asyncssh.SSHKey, path: Path, passphrase: str | None = None) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle, warnings.catch_warnings():
        # ssh-keygen's default of 16 bcrypt rounds, which bcrypt itself calls too few.
        warnings.filterwarnings("ignore", ".*bcrypt.kdf", UserWarning)
        handle.write(key.export_private_key("openssh", passphrase, rounds=16))
    return path


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited ({process.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not start listening: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def running_sshd(
    directory: Path, mode: str = "ok", *, port: int | None = None
) -> Iterator[SSHServer]:
    """sshd -D -e on 127.0.0.1 whose every session runs the powershell.exe stand-in."""
    sshd = need_executable("sshd", "openssh-server")
    directory.mkdir(parents=True, exist_ok=True)
    user = getpass.getuser()
    if os.geteuid() == 0:
        # Privilege separation needs its empty directory; the packaged service creates it.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    write_private_key(host_key, directory / "host_key")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key_file = write_private_key(client_key, directory / "client_key")
    (directory / "authorized_keys").write_bytes(client_key.export_public_key("openssh"))
    standin = (
        f"cd {shlex.quote(str(ROOT))} && exec {shlex.quote(sys.executable)}"
        f" -m tests.collectors.fake_powershell {shlex.quote(mode)}"
    )
    port = port or free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {directory / "host_key"}
PidFile none
AuthorizedKeysFile {directory / "authorized_keys"}
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
ForceCommand {standin}
DisableForwarding yes
PermitTTY no
PrintMotd no
LogLevel VERBOSE
"""
    )
    log = directory / "sshd.log"
    with _sshd_process(sshd, config, port, log):
        yield SSHServer(port, host_key, client_key_file, user, log)


@contextlib.contextmanager
def _sshd_process(sshd: str, config: Path, port: int, log: Path) -> Iterator[None]:
    """sshd -D -e with `config`, listening on `port` while the block runs."""
    check = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, check=False)
    if check.returncode != 0:
        missing(f"sshd refuses the test configuration: {check.stderr.decode().strip()}")
    with log.open("wb") as log_handle:
        process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)], stdout=log_handle, stderr=log_handle
        )
    try:
        _wait_listening(port, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class PasswordSSHServer:
    """A running sshd that accepts one throwaway account by password only."""

    port: int
    host_key: asyncssh.SSHKey
    user: str
    password: str

    def known_hosts_line(self) -> str:
        public = self.host_key.export_public_key("openssh").decode().split()
        return f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n"


def _run_as_root(*command: str, stdin: str | None = None) -> None:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


@contextlib.contextmanager
def running_password_sshd(answer: str) -> Iterator[PasswordSSHServer]:
    """sshd checking a password against the system's own account database.

    Without PAM, sshd verifies a password with the shadow file, so the test needs an account
    of its own: it is created with a random password and deleted afterwards, which needs
    root. The account cannot reach the project's interpreter (it may live under /root), so
    its session is a shell script that checks the command and prints `answer`.
    """
    sshd = need_executable("sshd", "openssh-server")
    useradd = need_executable("useradd", "passwd")
    userdel = need_executable("userdel", "passwd")
    chpasswd = need_executable("chpasswd", "passwd")
    if os.geteuid() != 0:
        missing("password authentication against OpenSSH needs root to create a test account")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="cmscan-sshd-password-"))
    directory.chmod(0o755)  # the account's session reads its answer from here
    user = f"cmscanpw{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    write_private_key(host_key, directory / "host_key")
    (directory / "answer.txt").write_text(answer + "\r\n")
    standin = directory / "powershell.sh"
    standin.write_text(
        "#!/bin/sh\n"
        f'if [ "$SSH_ORIGINAL_COMMAND" != {shlex.quote(SSH_COMMAND)} ]; then\n'
        "  echo \"'$SSH_ORIGINAL_COMMAND' is not recognized\" >&2; exit 1\n"
        "fi\n"
        "cat >/dev/null\n"
        f"cat {shlex.quote(str(directory / 'answer.txt'))}\n"
    )
    standin.chmod(0o755)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {directory / "host_key"}
PidFile none
UsePAM no
PubkeyAuthentication no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitEmptyPasswords no
AllowUsers {user}
ForceCommand /bin/sh {standin}
DisableForwarding yes
PermitTTY no
PrintMotd no
LogLevel VERBOSE
"""
    )
    log = directory / "sshd.log"
    _run_as_root(
        useradd, "--no-create-home", "--home-dir", str(directory), "--shell", "/bin/sh", user
    )
    try:
        _run_as_root(chpasswd, stdin=f"{user}:{password}\n")
        with _sshd_process(sshd, config, port, log):
            yield PasswordSSHServer(port, host_key, user, password)
    finally:
        _run_as_root(userdel, user)
        shutil.rmtree(directory, ignore_errors=True)
