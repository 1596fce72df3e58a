"""A local certificate authority and a server certificate for E2B's host routing over HTTPS
(`cove e2b-cert`), and the client settings `cove serve` prints for E2B's SDKs.

E2B's SDK reaches a sandbox at `https://{port}-{id}.{domain}` and the API at `https://api.{domain}`
once `E2B_DOMAIN` is set, so the server needs a certificate for `*.{domain}` that the client trusts.
The CA is made once and kept (a client's bundle stays valid when the server certificate is made
again); the server certificate also names `localhost` and the loopback addresses, so the header
routing URLs work over HTTPS too. Keys are written 0600 in `DATA_DIR/tls/`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cove.config import Settings

DEFAULT_DOMAIN = "cove.localhost"
"""Two labels: rustls (in E2B's SDK) refuses a wildcard on one, such as `*.localhost`."""
CA_DAYS = 3650
SERVER_DAYS = 825
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class CertificateFiles:
    """Where `make_certificates` writes, under DATA_DIR/tls/."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def certificate(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        return self.folder / "server.key"

    @property
    def bundle(self) -> Path:
        """The system's CAs and Cove's: what a client's SSL_CERT_FILE should be (it replaces the
        client's own store)."""
        return self.folder / "ca-bundle.pem"


def certificate_files(data_dir: Path) -> CertificateFiles:
    return CertificateFiles(data_dir / "tls")


def base_domain(domain: str) -> str:
    """`domain` without a port, lower case; ValueError unless it is two labels or more."""
    name = domain.strip().lower().rstrip(".").split(":", 1)[0]
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"domain {domain!r} must be a DNS name of two labels or more, such as {DEFAULT_DOMAIN} "
            "(a wildcard on one label, such as *.localhost, is refused by E2B's SDK)"
        )
    return name


def _write(path: Path, data: bytes, private: bool) -> None:
    """`data` in `path`, readable by its owner only if `private`, replacing it whole."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _authority(files: CertificateFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA kept in `files`, or a new one."""
    if files.ca.exists() and files.ca_key.exists():
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{files.ca_key} is not the EC key 'cove e2b-cert' makes")
        return x509.load_pem_x509_certificate(files.ca.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Cove local CA {os.urandom(4).hex()}")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(files.ca_key, _pem_key(key), private=True)
    _write(files.ca, certificate.public_bytes(serialization.Encoding.PEM), private=False)
    return certificate, key


def _system_cas() -> bytes:
    """The CAs this host trusts, as PEM (OpenSSL's default file, else certifi's)."""
    default = ssl.get_default_verify_paths()
    for path in (default.cafile, default.openssl_cafile):
        if path and Path(path).is_file():
            return Path(path).read_bytes()
    import certifi

    return Path(certifi.where()).read_bytes()


def make_certificates(data_dir: Path, domain: str = DEFAULT_DOMAIN) -> CertificateFiles:
    """The CA (kept if made before), a server certificate for `domain`, `*.domain`, `api.domain`,
    localhost and loopback, and the clients' bundle, in DATA_DIR/tls/."""
    name = base_domain(domain)
    files = certificate_files(data_dir)
    files.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca, ca_key = _authority(files)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName(dns) for dns in (name, f"*.{name}", f"api.{name}", "localhost")
    ]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "::1")]
    now = datetime.now(UTC)
    ca_identifier = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_identifier), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(files.key, _pem_key(key), private=True)
    _write(files.certificate, certificate.public_bytes(serialization.Encoding.PEM), private=False)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    _write(files.bundle, _system_cas().rstrip(b"\n") + b"\n" + ca_pem, private=False)
    return files


def e2b_client_settings(settings: Settings) -> list[str]:
    """What E2B's SDKs need to reach this server, for `cove serve` to print: header routing
    (E2B_API_URL and E2B_SANDBOX_URL), and host routing (E2B_DOMAIN) when it serves HTTPS."""
    url = settings.base_url
    bundle = certificate_files(settings.data_dir).bundle
    trust = f" SSL_CERT_FILE={bundle}" if settings.tls_cert_file and bundle.exists() else ""
    lines = [
        f"E2B SDKs, header routing: export E2B_API_URL={url} E2B_SANDBOX_URL={url} E2B_API_KEY=<key>{trust}"
    ]
    if settings.tls_cert_file:
        domain = settings.e2b_public_domain
        lines.append(f"E2B SDKs, host routing: export E2B_DOMAIN={domain} E2B_API_KEY=<key>{trust}")
    else:
        lines.append(
            "E2B SDKs, host routing (E2B_DOMAIN) needs HTTPS: run 'cove e2b-cert' and set the "
            "COVE_TLS_CERT_FILE and COVE_TLS_KEY_FILE it prints"
        )
    return lines
