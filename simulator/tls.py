"""A per-run certificate authority for the simulated fleet, and lazily issued host certificates."""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for any demo or benchmark run, short enough that a leaked ca.pem is worthless.
VALIDITY = datetime.timedelta(days=7)
# Clocks on a test machine may be a little behind the one that signed.
BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class HostCertificate:
    """What a host's TLS listener needs: its context and the DER certificate clients see."""

    context: ssl.SSLContext
    certificate_der: bytes


@dataclass
class FleetCA:
    """A throwaway CA: its certificate is written to `ca_file`; its key never leaves memory."""

    ca_file: Path
    _key: ec.EllipticCurvePrivateKey
    _certificate: x509.Certificate
    _issued: dict[tuple[str, str], HostCertificate] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path) -> FleetCA:
        """A new CA key and certificate; writes directory/"ca.pem" (the certificate only)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cmscan simulated fleet"),
                x509.NameAttribute(NameOID.COMMON_NAME, "cmscan simulated fleet CA"),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        ca_file = directory / "ca.pem"
        ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(ca_file=ca_file, _key=key, _certificate=certificate)

    @property
    def issued(self) -> int:
        """How many host certificates this CA has issued (hosts get one on first use)."""
        return len(self._issued)

    def server_context(self, hostname: str, address: str) -> ssl.SSLContext:
        """A server context whose certificate names DNS:hostname and IP:address (cached)."""
        return self.host_certificate(hostname, address).context

    def host_certificate(self, hostname: str, address: str) -> HostCertificate:
        """The host's context and certificate, issued on first use and then reused."""
        cached = self._issued.get((hostname, address))
        if cached is None:
            cached = self._issue(hostname, address)
            self._issued[(hostname, address)] = cached
        return cached

    def _issue(self, hostname: str, address: str) -> HostCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(hostname)]
        names.append(x509.IPAddress(ipaddress.ip_address(address)))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
            .sign(self._key, hashes.SHA256())
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_chain(context, certificate, key)
        return HostCertificate(context, certificate.public_bytes(serialization.Encoding.DER))


def _load_chain(
    context: ssl.SSLContext, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    """Load a certificate and key into a context without the key ever reaching disk in clear.

    The ssl module only loads from files, so the key is written encrypted under a random
    password that lives only in memory, and the file is removed at once.
    """
    password = secrets.token_bytes(32)
    pem = certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    descriptor, path = tempfile.mkstemp(prefix="cmscan-host-", suffix=".pem")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        context.load_cert_chain(path, password=password)
    finally:
        os.unlink(path)
