"""Data for the browser tests of the helpdesk's pages: a citizen with a history, a funnel of
several offices and weeks, and signing in as staff."""

from __future__ import annotations

import datetime
import random

from django.utils import timezone
from playwright.sync_api import Page, expect

from keys import audit
from keys.models import (
    Activation,
    AuditEvent,
    Citizen,
    DigitalKey,
    RegistrationOffice,
    SignInAttempt,
)
from keys.services import activation as flow
from keys.services import issuance

PASSWORD = "Correct-Horse-9x"
STAFF_PASSWORD = "Staff-password-1!"  # tests/conftest.py make_staff
S = Activation.State


def citizen_with_history(citizen: Citizen, clerk, rf) -> Citizen:
    """Activated with the app and SMS keys, signed in twice, a wrong password, a new activation."""
    issued = issuance.issue_activation(citizen, issued_by=clerk)
    request = rf.post("/", REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="Mozilla/5.0 Firefox/140.0")
    flow.redeem_activation_code(issued.activation.pk, issued.activation_code, request)
    user = flow.create_account(issued.activation, "jan.peeters", PASSWORD, request)
    for kind in ["totp", "sms"]:
        key = flow.enrol_key(user, kind, issued.activation, phone="+32470123456")
        DigitalKey.objects.filter(pk=key.pk).update(
            state="active", activated_at=timezone.now(), last_used_at=timezone.now()
        )
    Activation.objects.filter(pk=issued.activation.pk).update(
        state=S.COMPLETED, completed_at=timezone.now()
    )
    for kind in ["totp", "sms"]:
        audit.record(
            AuditEvent.Action.SIGNIN_SUCCEEDED,
            request=request,
            actor=user,
            citizen=citizen,
            kind=kind,
        )
    audit.record(
        AuditEvent.Action.SIGNIN_FAILED,
        request=request,
        actor=user,
        citizen=citizen,
        reason="password",
    )
    SignInAttempt.objects.create(
        username_canonical=user.username_canonical, ip_address="192.0.2.66"
    )
    citizen.refresh_from_db()
    return citizen


def funnel_data(seed: int = 11) -> None:
    """Twelve weeks of three offices, with a realistic funnel."""
    rng = random.Random(seed)
    offices = [
        RegistrationOffice.objects.get_or_create(code=code, defaults={"name": name})[0]
        for code, name in [
            ("leuven", "Stad Leuven"),
            ("gent", "Stad Gent"),
            ("antwerpen", "Stad Antwerpen"),
        ]
    ]
    now = timezone.now()
    people, activations = [], []
    serial = 0
    for week in range(12):
        for office in offices:
            for _ in range(rng.randint(14, 30)):
                serial += 1
                created = now - datetime.timedelta(days=7 * week + rng.random() * 6)
                people.append(
                    Citizen(
                        first_name="Test",
                        last_name=f"Burger {serial}",
                        national_number=f"{90000000000 + serial}",
                        email=f"burger{serial}@example.be",
                        id_document_type="id_card",
                        id_document_number=str(serial),
                        office=office,
                    )
                )
                roll = rng.random()
                stage = 0 + (roll > 0.1) + (roll > 0.22) + (roll > 0.3) + (roll > 0.35)
                fresh = week < 2
                if stage == 4:
                    state = S.COMPLETED
                elif fresh:
                    state = [S.ISSUED, S.OPENED, S.CODE_VERIFIED, S.CODE_VERIFIED][stage]
                else:
                    state = rng.choice([S.EXPIRED, S.EXPIRED, S.EXPIRED, S.LOCKED, S.REVOKED])
                activations.append(
                    Activation(
                        office=office,
                        state=state,
                        link_token_hash=f"demo-{serial}",
                        code_hash="demo",
                        created_at=created,
                        expires_at=created + datetime.timedelta(days=14),
                        opened_at=created if stage >= 1 else None,
                        code_verified_at=created if stage >= 2 else None,
                        completed_at=created if stage >= 4 else None,
                    )
                )
    Citizen.objects.bulk_create(people)
    saved = {c.national_number: c for c in Citizen.objects.filter(last_name__startswith="Burger")}
    for person, item in zip(people, activations, strict=True):
        item.citizen = saved[person.national_number]
    Activation.objects.bulk_create(activations)


def staff_code(key: DigitalKey) -> str:
    """The app's code for the staff member's key: of the current time step, or of the next one
    when the current one was used (a step is accepted once; the next is within the window)."""
    from datetime import timedelta

    import pyotp

    from keys.digital_keys import get_kind

    key.refresh_from_db()
    totp = pyotp.TOTP(get_kind(key.kind).secret(key))
    now = timezone.now()
    if key.last_totp_step is not None and key.last_totp_step >= totp.timecode(now):
        now += timedelta(seconds=30)
    return totp.at(now)


def staff_sign_in(page: Page, base_url: str, username: str) -> None:
    """The real staff sign-in: password, then the code of the staff member's app key (made
    beforehand, as the first sign-in's enrolment leaves it: ``tests.conftest.staff_key``)."""
    from keys.models import User
    from tests.conftest import staff_key

    key = staff_key(User.objects.get(username=username))
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.locator('input[type="submit"]').click()
    page.fill("#id_code", staff_code(key))
    page.locator('input[type="submit"]').click()
    expect(page.locator("#user-tools")).to_be_visible()
