"""manage.py seed_data: made-up but valid data, every state, fast, recognisable (issue 11 §4)."""

import io
import random
import time
from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from keys.management.commands.seed_data import national_number
from keys.models import (
    Activation,
    AuditEvent,
    Citizen,
    DigitalKey,
    RegistrationOffice,
    SignInAttempt,
    User,
)
from keys.search import search_name
from keys.validators import parse_national_number

pytestmark = pytest.mark.django_db


def seed(citizens: int, **options) -> str:
    out = io.StringIO()
    call_command("seed_data", citizens=citizens, offices=12, force=True, stdout=out, **options)
    return out.getvalue()


def test_refuses_without_debug_unless_forced():
    with override_settings(DEBUG=False), pytest.raises(CommandError, match="--force"):
        call_command("seed_data", citizens=3, stdout=io.StringIO())
    assert not Citizen.objects.exists()
    with override_settings(DEBUG=True):
        call_command("seed_data", citizens=3, offices=2, stdout=io.StringIO())
    assert Citizen.objects.count() == 3


def test_national_numbers_are_valid_and_unique_and_some_are_bis():
    started = time.monotonic()
    output = seed(300, seed=7)
    assert time.monotonic() - started < 30
    assert "300/300 citizens" in output
    numbers = list(Citizen.objects.values_list("national_number", "birth_date"))
    assert len(numbers) == 300
    assert len({n for n, _ in numbers}) == 300
    today = date.today()
    for number, birth_date in numbers:
        parsed = parse_national_number(number)  # raises when the check digits are wrong
        assert parsed.birth_date == birth_date
        age = (today - birth_date).days / 365.25
        assert 12 <= age <= 91
    # people born from 2000 (the "2" prefix of the check) and before it
    years = {b.year for _, b in numbers}
    assert min(years) < 2000 <= max(years)


def test_the_number_generator_covers_bis_numbers_and_the_2000_rule():
    rng = random.Random(3)
    for born in [date(1931, 2, 28), date(1999, 12, 31), date(2000, 1, 1), date(2012, 6, 15)]:
        for bis in (False, True):
            parsed = parse_national_number(national_number(rng, born, bis=bis))
            assert parsed.birth_date == born
            assert parsed.is_bis is bis


def test_every_state_and_every_kind_of_row():
    seed(40, seed=1)
    states = set(Activation.objects.values_list("state", flat=True))
    assert states == set(Activation.State.values)
    # the open ones are really open (recent), and some open ones are past their expiry
    assert Activation.objects.open().exists()
    for model in (User, DigitalKey, SignInAttempt, AuditEvent):
        assert model.objects.exists(), model
    superseded = Activation.objects.filter(state="superseded").first()
    assert superseded.superseded_by.citizen_id == superseded.citizen_id
    assert superseded.superseded_by.created_at > superseded.created_at
    for activation in Activation.objects.select_related("citizen__account"):
        assert activation.expires_at == activation.created_at + timedelta(days=14)
        if activation.state == "completed":
            assert activation.opened_at < activation.code_verified_at < activation.completed_at
            assert activation.citizen.account is not None
        if activation.state == "locked":
            assert activation.failed_code_attempts == 5
    # one open activation a citizen at most (the database's constraint held)
    assert Activation.objects.filter(state__in=Activation.OPEN_STATES).count() == len(
        set(
            Activation.objects.filter(state__in=Activation.OPEN_STATES).values_list(
                "citizen", flat=True
            )
        )
    )


def test_rows_are_recognisable_and_secrets_unusable():
    seed(30, seed=2)
    assert all(
        c.startswith("seed-") for c in RegistrationOffice.objects.values_list("code", flat=True)
    )
    assert RegistrationOffice.objects.count() == 12
    for citizen in Citizen.objects.select_related("account", "office"):
        assert citizen.email.endswith("@example.invalid")
        assert citizen.office.code.startswith("seed-")
        assert citizen.search_name == search_name(citizen.first_name, citizen.last_name)
        if citizen.account:
            assert not citizen.account.has_usable_password()
            assert citizen.account.username_canonical == citizen.account.username.lower()
    clerks = User.objects.filter(username__startswith="seed.clerk.")
    assert clerks.count() == 12
    assert not any(clerk.has_usable_password() for clerk in clerks)
    assert not Activation.objects.filter(link_token_hash="").exists()


def test_a_second_run_adds_more_and_the_database_keeps_working(office, clerk):
    seed(25, seed=5)
    seed(25, seed=5)  # the same random seed: the numbers must still be unique
    assert Citizen.objects.count() == 50
    assert RegistrationOffice.objects.filter(code__startswith="seed-").count() == 12
    # the ids it chose do not collide with the next rows the application writes
    citizen = Citizen.objects.create(
        first_name="Jan",
        last_name="Peeters",
        national_number="85073003328",
        email="jan@example.be",
        id_document_type="id_card",
        id_document_number="1",
        office=office,
    )
    from keys.services import issuance

    issuance.issue_activation(citizen, issued_by=clerk)
    assert citizen.pk > max(Citizen.objects.exclude(pk=citizen.pk).values_list("pk", flat=True))
