"""Four languages: complete catalogs, language in the URL, a switch that keeps the place,
e-mails and SMS in the citizen's language."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail

from keys import sms
from keys.services import issuance
from tests.wizard_helpers import open_link, post_step, step_url

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ["nl", "fr", "de"]


@pytest.fixture(scope="module")
def fresh_catalogs(tmp_path_factory) -> Path:
    """The catalogs after ``makemessages`` over the current code, in a copy of the project."""
    copy = tmp_path_factory.mktemp("project")
    for name in [
        "manage.py",
        "csam_activation",
        "keys",
        "ops",
        "helpdesk",
        "oidc",
        "templates",
        "locale",
    ]:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo")
            )
        else:
            shutil.copy(source, copy / name)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "DEBUG": "true"}
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "makemessages",
            *[f"-l{lang}" for lang in LANGUAGES],
            "--no-obsolete",
        ],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return copy / "locale"


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_is_complete_and_up_to_date(fresh_catalogs, language):
    committed = (ROOT / "locale" / language / "LC_MESSAGES" / "django.po").read_text()
    assert "#, fuzzy" not in committed.split("\n\n", 1)[1], "fuzzy entries in the committed catalog"
    po = fresh_catalogs / language / "LC_MESSAGES" / "django.po"
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po)],
        capture_output=True,
        text=True,
        check=True,
    )
    statistics = result.stderr.strip()
    assert "untranslated" not in statistics, (
        f"{language}: a message in the code is missing: {statistics}"
    )
    assert "fuzzy" not in statistics, f"{language}: {statistics}"


def test_vocabulary_of_the_real_service():
    from django.utils import translation

    expectations = {
        "fr": {
            "My digital keys": "Mes clés numériques",
            "Activation code": "Code d'activation",
            "Next": "Suivant",
        },
        "de": {
            "My digital keys": "Meine digitalen Schlüssel",
            "Activation code": "Aktivierungscode",
            "Next": "Weiter",
        },
        "nl": {
            "My digital keys": "Mijn digitale sleutels",
            "Activation code": "Activatiecode",
            "Next": "Volgende",
        },
    }
    for language, pairs in expectations.items():
        with translation.override(language):
            for english, expected in pairs.items():
                assert translation.gettext(english) == expected


@pytest.fixture
def issued(citizen, clerk):
    return issuance.issue_activation(citizen, issued_by=clerk)


@pytest.mark.parametrize("target", ["fr", "de", "en"])
def test_language_switch_keeps_the_place_in_the_wizard(client, issued, target):
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.formatted_code})
    response = client.post("/i18n/setlang/", {"language": target, "next": step_url("key")})
    assert response["Location"] == step_url("key", target)
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert page.context["LANGUAGE_CODE"] == target
    assert f'lang="{target}"' in page.content.decode()


@pytest.mark.parametrize(
    ("language", "code_subject", "sms_word"),
    [
        ("nl", "registratiecode", "registratiecode"),
        ("fr", "code d'enregistrement", "code d'enregistrement"),
        ("de", "Registrierungscode", "Registrierungscode"),
        ("en", "registration code", "registration code"),
    ],
)
def test_codes_are_sent_in_the_citizens_language(
    client, citizen, clerk, language, code_subject, sms_word
):
    citizen.language = language
    citizen.save()
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    open_link(client, issued.activation_link)
    post_step(client, "code", {"activation_code": issued.formatted_code}, language=language)
    post_step(
        client,
        "key",
        {"kind": "sms", "phone": "0475998877", "accept_terms": "on"},
        language=language,
    )
    post_step(
        client,
        "account",
        {
            "username": "jan.peeters",
            "password": "Correct-Horse-9x",
            "password_confirm": "Correct-Horse-9x",
        },
        language=language,
    )
    assert sms_word.lower() in sms.outbox[-1].body.lower()
    code = re.search(r"\b(\d{6})\b", sms.outbox[-1].body).group(1)
    post_step(client, "verify", {"code": code}, language=language)
    confirmation = mail.outbox[-1]
    assert confirmation.extra_headers["Content-Language"] == language
    post_step(client, "verify", {"wizard_goto_step": "key"}, language=language)
    client.post(
        step_url("activated", language),
        {"activation_wizard-current_step": "activated", "activated-next_action": "another"},
    )
    post_step(client, "key", {"kind": "email", "accept_terms": "on"}, language=language)
    assert code_subject.lower() in mail.outbox[-1].subject.lower()
