"""Mutual TLS for SeaweedFS's gRPC ports: a CA made for one cluster, one certificate.

SeaweedFS's parts (master, volume server, filer, S3 gateway) talk gRPC to each other on
ports any local process can reach; with ``[grpc] ca`` set each side accepts a peer only
if its certificate is signed by that CA, so a process without the key (kept 0600 in the
cluster's folder) can neither read nor change the bucket's metadata through them.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from batchserving.core.atomic import write_private

PARTS = ("master", "volume", "filer", "s3", "client")
VALID_DAYS = 3650


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    encoding, fmt = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, fmt, serialization.NoEncryption()).decode()


def _certificate(subject, issuer, public_key, signer, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(signer, hashes.SHA256())


def grpc_tls_config(folder: Path) -> str:
    """Make the CA and the certificate in ``folder`` (once); their ``security.toml`` part."""
    cert, key, ca_cert = folder / "grpc.crt", folder / "grpc.key", folder / "grpc-ca.crt"
    if not (cert.exists() and key.exists() and ca_cert.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate(
            _name("cluster-ca"), _name("cluster-ca"), ca_key.public_key(), ca_key, ca=True
        )
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _certificate(_name("cluster"), ca.subject, leaf_key.public_key(), ca_key, ca=False)
        # The CA's key signs once and is dropped: nobody can make a second certificate.
        write_private(key, _pem_key(leaf_key))
        write_private(cert, leaf.public_bytes(serialization.Encoding.PEM).decode())
        write_private(ca_cert, ca.public_bytes(serialization.Encoding.PEM).decode())
    sections = [f'[grpc]\nca = "{ca_cert}"\n']
    sections += [f'[grpc.{part}]\ncert = "{cert}"\nkey = "{key}"\n' for part in PARTS]
    return "".join(sections)
