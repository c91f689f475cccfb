import json
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from keys import tokens
from keys.models import Activation, AuditEvent, Citizen, User

ARGS = {
    "first_name": "Marie",
    "last_name": "Dubois",
    "national_number": "90.01.01-123.95",
    "email": "marie.dubois@example.be",
    "phone": "0470 12 34 56",
    "language": "fr",
}


def issue(**overrides) -> str:
    out = StringIO()
    call_command("issue_activation", stdout=out, stderr=StringIO(), **{**ARGS, **overrides})
    return out.getvalue()


def test_json_output(office):
    data = json.loads(issue(json=True))
    assert set(data) >= {"id", "activation_code", "activation_link"}
    activation = Activation.objects.get(pk=data["id"])
    assert tokens.check_activation_code(data["activation_code"], activation.code_hash)
    token = data["activation_link"].rstrip("/").rsplit("/", 1)[1]
    assert activation.link_token_hash == tokens.hash_link_token(token)
    assert "/fr/activeren/" in data["activation_link"]
    assert data["email_sent"] is True
    assert mail.outbox[0].subject == "CSAM – Mes clés numériques : activation"
    citizen = Citizen.objects.get()
    assert citizen.phone == "+32470123456"
    assert citizen.office == office
    assert AuditEvent.objects.filter(
        action="activation_issued", actor_label="manage.py issue_activation"
    ).exists()


def test_plain_output(office):
    output = issue()
    code = Activation.objects.get()
    assert "activation code (paper):" in output
    assert "activation link (e-mail): http://testserver/fr/activeren/" in output
    assert code.code_hash not in output


def test_refuses_bad_input_and_saves_nothing(office):
    with pytest.raises(CommandError, match="check digits"):
        issue(national_number="90010112396")
    with pytest.raises(CommandError, match="email"):
        issue(email="not-an-address")
    assert not Citizen.objects.exists()
    assert not Activation.objects.exists()


def test_office_must_be_known(office, other_office):
    with pytest.raises(CommandError, match="--office"):
        issue()
    with pytest.raises(CommandError, match="No registration office"):
        issue(office="brugge")
    issue(office="gent")
    assert Citizen.objects.get().office == other_office


def test_open_activation_needs_reissue(office):
    first = json.loads(issue(json=True))
    with pytest.raises(CommandError, match="--reissue"):
        issue(json=True)
    second = json.loads(issue(json=True, reissue=True))
    assert Activation.objects.get(pk=first["id"]).state == Activation.State.SUPERSEDED
    assert Activation.objects.get(pk=second["id"]).state == Activation.State.ISSUED
    assert Citizen.objects.count() == 1


def test_demo_setup_creates_staff_and_a_working_activation(db):
    out = StringIO()
    call_command("demo_setup", stdout=out, stderr=StringIO())
    text = out.getvalue()
    for username in ["clerk", "helpdesk", "admin"]:
        assert f"username {username}" in text
        password = text.split(f"username {username}")[1].split("password ")[1].split()[0]
        assert User.objects.get(username=username).check_password(password)
    assert User.objects.get(username="clerk").groups.filter(name="Registration office").exists()
    assert User.objects.get(username="admin").is_superuser
    code = text.split("activation code (paper): ")[1].split()[0]
    assert tokens.check_activation_code(code, Activation.objects.get().code_hash)
    # a second run gives fresh passwords and supersedes the demo activation
    call_command("demo_setup", stdout=StringIO(), stderr=StringIO())
    assert Activation.objects.filter(state=Activation.State.SUPERSEDED).count() == 1


def test_a_queued_activation_email_is_said_to_be_queued(office, settings):
    """With the database task backend the e-mail waits for the worker: that is no failure."""
    from io import StringIO

    from django.core.management import call_command

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    out, err = StringIO(), StringIO()
    call_command(
        "issue_activation",
        first_name="Jan",
        last_name="Peeters",
        national_number="85073003328",
        email="jan.peeters@example.be",
        stdout=out,
        stderr=err,
    )
    assert "queued" in out.getvalue()
    assert "could not be sent" not in err.getvalue()
