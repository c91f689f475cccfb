"""Issue 13's promise about the key-module interface, kept true from here on:

1. a new kind of key needs only its module, its templates and a line in the registry. A fifth
   kind made for the tests (``tests/pigeon_kind``: codes by pigeon post, with a script, a block
   on the sign-in page, links under its key and a page of its own) is offered by the wizard,
   activated through it, signs in, is listed in "My digital keys" and offered when adding a key;
2. the passkey kind lives in its package and its templates: no generic template, view or module
   names it, except the places listed (and explained) below and in the README.
"""

from __future__ import annotations

import importlib
import io
import re
import tokenize
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import clear_url_caches, reverse
from django.utils import translation

from keys.digital_keys import KINDS
from keys.models import DigitalKey
from tests.pigeon_kind import PigeonKind, pigeon_code
from tests.test_signin import PASSWORD, sign_in
from tests.test_signin import account as signed_up_account  # noqa: F401
from tests.wizard_helpers import open_link, post_step, step_url

ROOT = Path(__file__).resolve().parent.parent
PIGEON_TEMPLATES = Path(__file__).resolve().parent / "pigeon_kind" / "templates"


def _reload_urls() -> None:
    """``keys/urls.py`` asks the registry again; the project's URLconf is rebuilt around it
    (its resolver of the ``keys`` namespace keeps the patterns it read first)."""
    import keys.urls

    importlib.reload(keys.urls)
    importlib.reload(importlib.import_module(django_settings.ROOT_URLCONF))
    clear_url_caches()


@pytest.fixture
def pigeon(settings):
    """The fifth kind in the registry, its templates found, its pages mounted; all undone."""
    settings.TEMPLATES = [
        {**engine, "DIRS": [*engine["DIRS"], PIGEON_TEMPLATES]} for engine in settings.TEMPLATES
    ]
    KINDS["pigeon"] = PigeonKind()
    _reload_urls()
    try:
        yield KINDS["pigeon"]
    finally:
        del KINDS["pigeon"]
        _reload_urls()


def test_a_fifth_kind_needs_only_its_module_its_templates_and_the_registry(
    client, citizen, clerk, pigeon
):
    from keys.services import issuance

    # Its own page, in the keys namespace, through KeyKind.urlpatterns.
    with translation.override("nl"):  # whatever language an earlier test left active
        assert reverse("keys:pigeon-loft") == "/nl/duivenhok/"
    assert client.get("/nl/duivenhok/").content == b"The pigeon loft"

    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.formatted_code})
    page = client.get(step_url("key")).content.decode()
    assert "Code by pigeon post" in page
    assert "A pigeon brings the code." in page
    assert '<script src="/static/keys/pigeon.js"></script>' in page
    post_step(client, "key", {"kind": "pigeon", "accept_terms": "on"})
    post_step(
        client,
        "account",
        {"username": "jan.peeters", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    verify = client.get(step_url("verify")).content.decode()
    assert "Wait for the pigeon at Loft 7." in verify
    assert '<script src="/static/keys/pigeon.js"></script>' in verify
    key = DigitalKey.objects.get(kind="pigeon")
    wrong = f"{(int(pigeon_code(key)) + 1) % 10**6:06d}"
    refused = post_step(client, "verify", {"code": wrong})
    assert refused.status_code == 200
    assert DigitalKey.objects.get(pk=key.pk).state == DigitalKey.State.PENDING
    response = post_step(client, "verify", {"code": pigeon_code(key)})
    assert response["Location"] == step_url("activated")
    key.refresh_from_db()
    assert key.state == DigitalKey.State.ACTIVE
    assert str(key).startswith("Code by pigeon post")

    # Signing in: its block on the sign-in page, its title on the code page.
    browser = Client()
    signin_page = browser.get("/nl/aanmelden/").content.decode()
    assert 'id="pigeon-signin"' in signin_page
    assert '<script src="/static/keys/pigeon.js"></script>' in signin_page
    browser.post("/nl/aanmelden/", {"username": "jan.peeters", "password": PASSWORD})
    browser.post("/nl/aanmelden/sleutel/", {"key": str(key.pk)})
    code_page = browser.get("/nl/aanmelden/code/").content.decode()
    assert "Unroll the pigeon&#x27;s note" in code_page
    assert "Unroll the note on the pigeon of Loft 7." in code_page
    response = browser.post("/nl/aanmelden/code/", {"code": pigeon_code(key)})
    assert response["Location"] == "/nl/mijn-sleutels/"

    # "My digital keys": listed, with its links and the wording of its remove link.
    key.user.digital_keys.create(kind="email", state="active", email="jan@example.org")
    my_keys = browser.get("/nl/mijn-sleutels/").content.decode()
    assert "Code by pigeon post" in my_keys
    assert 'id="pigeon-feed">Feed the pigeon of Loft 7</a>' in my_keys
    assert f'<a href="/nl/mijn-sleutels/{key.pk}/verwijderen/">Release the pigeon</a>' in my_keys


def test_the_fifth_kind_is_offered_when_adding_a_key(client, signed_up_account, pigeon):  # noqa: F811
    assert sign_in(client, signed_up_account)["Location"] == "/nl/mijn-sleutels/"
    page = client.get("/nl/mijn-sleutels/toevoegen/").content.decode()
    assert 'value="pigeon"' in page
    assert "A pigeon brings the code." in page
    assert '<script src="/static/keys/pigeon.js"></script>' in page


# --- the passkey kind's footprint ------------------------------------------------------------

#: Where "passkey" may still be named outside ``keys/digital_keys/passkey/`` and the templates
#: ``templates/keys/digital_keys/passkey*``, and why (docs/architecture.md says the
#: same). Only code counts: comments and docstrings may describe passkeys.
ALLOWED = {
    # The registry: the one line that names the kind (and its import).
    "keys/digital_keys/__init__.py": "PasskeyKind",
    # The rate limit of the username-less sign-in's options (the one table of limits).
    "keys/conf.py": "passkey-options",
}


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """The names and string literals of a module, without comments and docstrings."""
    found = []
    previous = tokenize.NEWLINE
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    for token in tokens:
        if token.type in (tokenize.NAME, tokenize.STRING):
            docstring = token.type == tokenize.STRING and previous in (
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
                tokenize.NL,
            )
            if not docstring:
                found.append((token.start[0], token.string))
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return found


def _is_passkey_own(relative: str) -> bool:
    return (
        relative.startswith(("keys/digital_keys/passkey/", "templates/keys/digital_keys/passkey"))
        or "/migrations/" in relative
    )


def test_no_generic_template_names_the_passkey_kind():
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*")):
        relative = path.relative_to(ROOT).as_posix()
        if (
            path.is_file()
            and not _is_passkey_own(relative)
            and re.search("passkey", path.read_text(), re.IGNORECASE)
        ):
            offenders.append(relative)
    assert offenders == []


def test_no_generic_module_names_the_passkey_kind():
    offenders = []
    for package in ("keys", "helpdesk", "oidc", "ops", "csam_activation"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if _is_passkey_own(relative):
                continue
            for line, text in _code_strings(path):
                if "passkey" not in text.lower():
                    continue
                allowed = ALLOWED.get(relative)
                source_line = path.read_text().splitlines()[line - 1]
                if allowed is None or allowed.lower() not in source_line.lower():
                    offenders.append(f"{relative}:{line}: {text}")
    assert offenders == []


def test_the_allow_list_is_not_stale():
    """Each allowed place still names passkeys; once one no longer does, drop it here."""
    for relative, marker in ALLOWED.items():
        assert marker.lower() in (ROOT / relative).read_text().lower(), relative


def test_own_audit_events_and_several_keys(pigeon, signed_up_account, monkeypatch):  # noqa: F811
    account = signed_up_account
    """``KeyKind.audit_actions`` and ``several_per_account`` reach the audit trail's choices and
    the database's "one active key per kind" without a word in ``keys/models.py``."""
    from django.db import IntegrityError, transaction

    from keys import audit
    from keys.models import AuditEvent

    monkeypatch.setattr(pigeon, "audit_actions", (("pigeon_lost", "A pigeon got lost"),))
    event = audit.record("pigeon_lost", actor=account)
    assert AuditEvent.objects.get(pk=event.pk).get_action_display() == "A pigeon got lost"

    DigitalKey.objects.create(user=account, kind="pigeon", state="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        DigitalKey.objects.create(user=account, kind="pigeon", state="active")
    monkeypatch.setattr(pigeon, "several_per_account", True)
    second = DigitalKey.objects.create(user=account, kind="pigeon", state="active")
    third = DigitalKey.objects.create(user=account, kind="pigeon", state="active")
    assert not second.one_per_account and not third.one_per_account
    # The kinds of SPEC §1 stay one a citizen.
    assert account.digital_keys.get(kind="email", state="active").one_per_account
    with pytest.raises(IntegrityError), transaction.atomic():
        DigitalKey.objects.create(user=account, kind="email", state="active")
