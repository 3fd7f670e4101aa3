"""Who signs the C2PA manifest: the operator's certificate and key, or a local key pair made on first use.

An operator sets `TALKINGHEAD_C2PA_CERT` (PEM certificate chain, signer first) and `TALKINGHEAD_C2PA_KEY`
(PEM private key), and `TALKINGHEAD_C2PA_ALG` when the key is not ES256 (es384, es512, ps256, ed25519, ...).
Otherwise a small local CA and a signing certificate are generated once in the user's config folder
(`$XDG_CONFIG_HOME/talkinghead/c2pa`, by default `~/.config/talkinghead/c2pa`, files 0600). The C2PA
library refuses a self-signed leaf, hence CA + leaf. Manifests signed so are valid but not trusted by
anyone else, and `verify` reports them as self-signed.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from talkinghead.errors import TalkingHeadError

__all__ = ["LOCAL_ORG", "Credentials", "config_dir", "credentials"]

LOCAL_ORG = "talkinghead local signer (self-signed)"


@dataclass(frozen=True)
class Credentials:
    chain: bytes  # PEM, signer certificate first
    key: bytes  # PEM
    alg: str  # "es256", ...
    self_signed: bool


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "talkinghead"


def credentials() -> Credentials:
    """The operator's credentials when configured, else the local ones (made now if missing)."""
    cert, key = os.environ.get("TALKINGHEAD_C2PA_CERT"), os.environ.get("TALKINGHEAD_C2PA_KEY")
    if cert or key:
        if not (cert and key):
            raise TalkingHeadError("Set both TALKINGHEAD_C2PA_CERT and TALKINGHEAD_C2PA_KEY, or neither.")
        try:
            return Credentials(
                Path(cert).read_bytes(),
                Path(key).read_bytes(),
                os.environ.get("TALKINGHEAD_C2PA_ALG", "es256").lower(),
                self_signed=False,
            )
        except OSError as exc:
            raise TalkingHeadError(f"Cannot read the signing certificate or key ({exc.strerror}).") from None
    folder = config_dir() / "c2pa"
    chain_path, key_path = folder / "signer_chain.pem", folder / "signer_key.pem"
    if not (chain_path.is_file() and key_path.is_file()):
        _make_local(folder, chain_path, key_path)
    return Credentials(chain_path.read_bytes(), key_path.read_bytes(), "es256", self_signed=True)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _make_local(folder: Path, chain_path: Path, key_path: Path) -> None:
    """A P-256 CA and a signing certificate it issues (C2PA's profile: digitalSignature, emailProtection EKU)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, LOCAL_ORG)]
        )

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=sign,
            crl_sign=sign,
            encipher_only=False,
            decipher_only=False,
        )

    def base(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name, leaf_name = name("talkinghead local CA"), name(f"talkinghead on {os.uname().nodename}")
    ca = (
        base(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        base(leaf_name, ca_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    _write_private(chain_path, leaf.public_bytes(pem) + ca.public_bytes(pem))
