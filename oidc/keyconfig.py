"""The provider's signing keys, read once when the settings load.

``OIDC_RSA_PRIVATE_KEY`` (PEM in the environment) or ``OIDC_RSA_PRIVATE_KEY_FILE`` (a path) is
the current key: it signs every ID token. ``OIDC_RSA_PREVIOUS_KEY`` / ``..._FILE`` is the key it
replaced: no longer used to sign, still published in the JWKS until the ID tokens it signed have
expired, so a rotation breaks no service. No key is ever generated outside DEBUG and tests.

This module only imports the standard library and ``cryptography``, so the settings can use it.
"""

from __future__ import annotations

import os
from pathlib import Path


def _read(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value.replace("\\n", "\n") + "\n"
    path = os.environ.get(f"{name}_FILE", "").strip()
    if path:
        return Path(path).read_text(encoding="ascii")
    return ""


def generate_pem() -> str:
    """A new 2048-bit RSA private key in PKCS#8 PEM (development and tests only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def development_key(path: Path) -> str:
    """The development key in ``path`` (``var/``, outside git), made on first use (mode 600)."""
    if path.exists():
        return path.read_text(encoding="ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = generate_pem()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(pem)
    return pem


def configured_keys() -> tuple[str, list[str]]:
    """``(current PEM or "", [previous PEMs])`` from the environment."""
    previous = _read("OIDC_RSA_PREVIOUS_KEY")
    return _read("OIDC_RSA_PRIVATE_KEY"), [previous] if previous else []
