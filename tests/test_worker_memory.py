"""A worker loads the WebAuthn library only when it serves a passkey (issue 10's memory target).

``webauthn`` and what it brings (cbor2, pyOpenSSL, ...) weigh about 3 MB per worker; the
passkey kind imports it on first use (``keys.digital_keys.passkey.kind._webauthn``). Checked in
a fresh interpreter, since this test process has long imported it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from webauthn.helpers import base64url_to_bytes as library_decode
from webauthn.helpers import bytes_to_base64url as library_encode

from keys.digital_keys.passkey.kind import base64url_to_bytes, bytes_to_base64url

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from django.urls import get_resolver
get_resolver().url_patterns  # every URLconf and the views it names
import keys.digital_keys, keys.views, keys.account_views, keys.recovery_views
client = Client()
for path in ("/nl/", "/nl/aanmelden/", "/fr/connexion/", "/nl/activatie/code/"):
    client.get(path)
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("webauthn", "cbor2"))
print("LOADED", loaded)
"""


def test_pages_without_passkeys_do_not_load_webauthn(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED []" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 16, 32, 33, 64])
def test_base64url_helpers_match_the_library(size: int) -> None:
    value = secrets.token_bytes(size)
    encoded = bytes_to_base64url(value)
    assert encoded == library_encode(value)
    assert base64url_to_bytes(encoded) == value == library_decode(encoded)


def test_base64url_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        base64url_to_bytes("abcde")
