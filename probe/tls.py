"""Certificates as a check reports them, and why a TLS handshake was refused, in words.

A verifying handshake that fails shows no certificate, so the check that wants
to say "expired on 2026-10-01" shakes hands once more without verifying
(`insecure_context`), only to read what the target presents.
"""
from __future__ import annotations

import asyncio
import hashlib
import ssl

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from probe.outcome import Certificate, day

# OpenSSL's X509_V_ERR_* codes a target can earn (see `man openssl-verify`)
NOT_YET_VALID, EXPIRED = 9, 10
SELF_SIGNED, SELF_SIGNED_IN_CHAIN = 18, 19
UNKNOWN_ISSUER = (2, 20, 21)
HOST_MISMATCH, IP_MISMATCH = 62, 64


def verifying_context(extra_ca_file: str = "") -> ssl.SSLContext:
    """The system's CAs, and those of `extra_ca_file` (PINGSTREAM_PROBE_CA_FILE) when given."""
    context = ssl.create_default_context()
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


def insecure_context() -> ssl.SSLContext:
    """Shakes hands with anyone: for skip_ssl_error, and to read a refused certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def certificate_of(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> Certificate | None:
    """The peer's leaf certificate (available whether or not it was verified)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return parsed_certificate(der) if der else None


def parsed_certificate(der: bytes) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        sans = tuple(names.get_values_for_type(x509.DNSName)) + tuple(
            str(address) for address in names.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        sans = ()
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=sans[:100],
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        serial=format(cert.serial_number, "x"),
    )


def refusal(error: ssl.SSLCertVerificationError, certificate: Certificate | None, host: str) -> str:
    """Why the target's certificate was refused, e.g. `TLS: certificate expired on 2026-10-01`."""
    code = error.verify_code
    if code == EXPIRED:
        return f"TLS: certificate expired on {day(certificate.not_after)}" if certificate else \
            "TLS: certificate expired"
    if code == NOT_YET_VALID:
        return f"TLS: certificate not valid before {day(certificate.not_before)}" if certificate else \
            "TLS: certificate not yet valid"
    if code in (HOST_MISMATCH, IP_MISMATCH):
        names = f" (it names {', '.join(certificate.sans[:5]) or certificate.subject})" if certificate else ""
        return f"TLS: certificate is not valid for {host}{names}"
    if code in (SELF_SIGNED, SELF_SIGNED_IN_CHAIN):
        who = f" ({certificate.subject})" if certificate else ""
        return f"TLS: self-signed certificate{who}, not trusted"
    if code in UNKNOWN_ISSUER:
        issuer = f" {certificate.issuer}" if certificate else ""
        return f"TLS: certificate issued by an unknown authority{issuer}"
    return f"TLS: certificate refused: {error.verify_message or error.reason or error}"


def handshake_failure(error: ssl.SSLError) -> str:
    """A handshake that failed before any certificate was judged (protocol, cipher, alert)."""
    reason = error.reason or error.strerror or str(error)
    return f"TLS: handshake failed ({str(reason).replace('_', ' ').lower()})"


async def presented_certificate(host: str, port: int, server_hostname: str | None,
                                budget: float) -> Certificate | None:
    """The certificate `host:port` presents, read by a handshake that verifies nothing; None if none in time."""
    if budget <= 0:
        return None
    try:
        async with asyncio.timeout(budget):
            _, writer = await asyncio.open_connection(host, port, ssl=insecure_context(),
                                                      server_hostname=server_hostname or host)
            try:
                return certificate_of(writer.get_extra_info("ssl_object"))
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError):
        return None
