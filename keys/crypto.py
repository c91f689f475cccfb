"""Encryption at rest for the TOTP seeds (Fernet: AES-128-CBC with HMAC-SHA256).

Keys come from ``FIELD_ENCRYPTION_KEYS`` (comma-separated Fernet keys, newest first). Every key
decrypts; the first encrypts, so adding a new key in front and running
``manage.py rotate_encryption_keys`` re-encrypts everything under it. Without the variable a key
is derived from ``SECRET_KEY`` (fine for development; set explicit keys in production).
"""

import base64
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def _fernet() -> MultiFernet:
    keys = list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])
    if not keys:
        digest = hashlib.sha256(b"csam-activation/field-encryption/" + settings.SECRET_KEY.encode())
        keys = [base64.urlsafe_b64encode(digest.digest()).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plain: str) -> str:
    """Encrypt ``plain`` under the newest key."""
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a value encrypted under any configured key."""
    return _fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """Re-encrypt a value under the newest key."""
    return _fernet().rotate(token.encode()).decode()
