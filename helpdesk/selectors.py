"""Read-only look-ups for the helpdesk's pages: a fixed number of queries a page, whatever the
size of a citizen's history or of the country.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from keys.conf import limits
from keys.digital_keys import KINDS, key_relations
from keys.models import (
    Activation,
    AuditEvent,
    Citizen,
    DigitalKey,
    RegistrationOffice,
    SignInAttempt,
)
from keys.services import recovery
from keys.services.signin import lockout_remaining

Action = AuditEvent.Action
State = Activation.State

# The real helpdesk shows the activity of the last 6 months (SPEC §1).
RECENT = timedelta(days=183)
RECENT_ROWS = 20
SIGNIN_ACTIONS = (Action.SIGNIN_SUCCEEDED,)


def citizen(pk: int) -> Citizen:
    return Citizen.objects.select_related("office", "account", "registered_by").get(pk=pk)


@dataclass
class ActivationRow:
    activation: Activation
    attempts_left: int


@dataclass
class SignIn:
    when: datetime.datetime
    ip_address: str | None
    browser: str
    key: str


@dataclass
class Overview:
    citizen: Citizen
    activations: list[ActivationRow]
    keys: list[DigitalKey]
    signins: list[SignIn]
    failed_signins: list[SignInAttempt]
    failed_signin_count: int
    lockout_minutes: int
    paused_keys: list[DigitalKey] = field(default_factory=list)
    #: Unused recovery codes and whether a set was ever made; None where they are turned off.
    recovery_codes: tuple[int, bool] | None = None

    @property
    def open_activation(self) -> Activation | None:
        return next((row.activation for row in self.activations if row.activation.is_open), None)

    @property
    def active_keys(self) -> list[DigitalKey]:
        return [key for key in self.keys if key.state == DigitalKey.State.ACTIVE]

    @property
    def may_unlock(self) -> bool:
        return bool(self.lockout_minutes or self.paused_keys)


def key_label(kind: str) -> str:
    implementation = KINDS.get(kind)
    return str(implementation.label) if implementation else kind


def key_name(key: DigitalKey) -> str:
    implementation = KINDS.get(key.kind)
    return implementation.display_name(key) if implementation else key.kind


def overview(person: Citizen) -> Overview:
    """The record, activations, keys (with their recovery codes' count) and recent sign-ins of one
    citizen (7 queries)."""
    now = timezone.now()
    activations = [
        ActivationRow(
            activation,
            max(0, limits.ACTIVATION_CODE_MAX_ATTEMPTS - activation.failed_code_attempts),
        )
        for activation in person.activations.select_related("office", "issued_by").order_by(
            "-created_at", "-pk"
        )
    ]
    keys: list[DigitalKey] = []
    recovery_codes: tuple[int, bool] | None = None
    signins: list[SignIn] = []
    failed: list[SignInAttempt] = []
    failed_count = 0
    minutes = 0
    if person.account_id is not None:
        keys = list(
            DigitalKey.objects.filter(user_id=person.account_id)
            .select_related(*key_relations())
            .order_by("created_at")
        )
        for key in keys:
            # The kind's name of the key: a passkey's own name, which the citizen also sees.
            key.name = key_name(key)
        if recovery.enabled():
            recovery_codes = recovery.status(person.account)
        events = AuditEvent.objects.filter(
            citizen=person, action__in=SIGNIN_ACTIONS, created_at__gte=now - RECENT
        ).order_by("-created_at", "-id")[:RECENT_ROWS]
        signins = [
            SignIn(e.created_at, e.ip_address, e.user_agent, key_label(e.detail.get("kind", "")))
            for e in events
        ]
        attempts = SignInAttempt.objects.filter(
            username_canonical=person.account.username_canonical,
            succeeded=False,
            created_at__gte=now - RECENT,
        )
        failed = list(attempts.order_by("-created_at")[:10])
        failed_count = attempts.count()
        minutes = lockout_remaining(person.account.username)
    return Overview(
        citizen=person,
        activations=activations,
        keys=keys,
        signins=signins,
        failed_signins=failed,
        failed_signin_count=failed_count,
        lockout_minutes=minutes,
        recovery_codes=recovery_codes,
        paused_keys=[
            k
            for k in keys
            if k.state == DigitalKey.State.ACTIVE and k.locked_until and k.locked_until > now
        ],
    )


def timeline(
    person: Citizen,
    *,
    actions: list[str] | None = None,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    office: RegistrationOffice | None = None,
) -> QuerySet[AuditEvent]:
    """The citizen's whole audit trail, newest first, with the helpdesk's filters."""
    events = AuditEvent.objects.filter(citizen=person)
    if actions:
        events = events.filter(action__in=actions)
    if since:
        events = events.filter(created_at__gte=start_of(since))
    if until:
        events = events.filter(created_at__lt=start_of(until + timedelta(days=1)))
    if office is not None:
        events = events.filter(activation__office=office)
    return events.select_related("activation__office").order_by("-created_at", "-id")


def start_of(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of ``day``, in the service's time zone."""
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=timezone.get_current_timezone())


# -- the activation funnel -------------------------------------------------------------------

STAGES = [
    ("issued", _("Issued")),
    ("opened", _("Link opened")),
    ("code_accepted", _("Code accepted")),
    ("account_created", _("Account created")),
    ("key_active", _("First key active")),
]
OUTCOMES = [
    ("in_progress", _("Still open")),
    ("expired", _("Expired")),
    ("locked", _("Locked")),
    ("revoked", _("Revoked")),
    ("superseded", _("Superseded")),
]
COLUMNS = [name for name, _label in STAGES + OUTCOMES]


@dataclass
class FunnelRow:
    """The figures of one group of activations (a week, an office, or all of them)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))

    def add(self, other: dict[str, int]) -> None:
        for name in COLUMNS:
            self.counts[name] += other.get(name, 0)

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def percent(self, name: str) -> float:
        issued = self.counts["issued"]
        return 100.0 * self.counts[name] / issued if issued else 0.0

    @property
    def stages(self) -> list[tuple[str, str, int, float]]:
        return [(n, str(label), self.counts[n], self.percent(n)) for n, label in STAGES]

    @property
    def outcomes(self) -> list[tuple[str, str, int, float]]:
        return [(n, str(label), self.counts[n], self.percent(n)) for n, label in OUTCOMES]

    @property
    def values(self) -> list[int]:
        return [self.counts[name] for name in COLUMNS]


@dataclass
class Funnel:
    since: datetime.date
    until: datetime.date
    total: FunnelRow
    weeks: list[tuple[datetime.date, FunnelRow]]
    offices: list[tuple[RegistrationOffice, FunnelRow]]
    cells: list[tuple[datetime.date, RegistrationOffice, FunnelRow]]


def week_label(monday: datetime.date) -> str:
    year, week, _day = monday.isocalendar()
    return f"{year}-W{week:02d}"


def monday_of(day: datetime.date) -> datetime.date:
    return day - timedelta(days=day.weekday())


def funnel(
    *,
    since: datetime.date,
    until: datetime.date,
    office: RegistrationOffice | None = None,
    offices: dict[int, RegistrationOffice] | None = None,
) -> Funnel:
    """Where activations issued from ``since`` to ``until`` (days, inclusive) got to, by ISO
    week of issue and by issuing office: two GROUP BY queries (and the offices' names), however
    many activations there are.

    A stage counts the activations that reached it: the link opened, the paper code accepted,
    the account made (or a new password set, for a citizen who had one), the first key active
    (the activation completed). An activation that completed made or reused an account, so a
    completed one counts as "account created" too. The outcomes are where the others stand
    now: still open, expired (an open one past its expiry included), locked, revoked, or
    superseded by a reissue.
    """
    now = timezone.now()
    start, end = start_of(since), start_of(until + timedelta(days=1))
    activations = Activation.objects.filter(created_at__gte=start, created_at__lt=end)
    if office is not None:
        activations = activations.filter(office=office)
    open_now = Q(state__in=Activation.OPEN_STATES, expires_at__gt=now)
    rows = (
        activations.annotate(week=TruncWeek("created_at"))
        .values("office_id", "week")
        .annotate(
            issued=Count("pk"),
            opened=Count("pk", filter=Q(opened_at__isnull=False)),
            code_accepted=Count("pk", filter=Q(code_verified_at__isnull=False)),
            key_active=Count("pk", filter=Q(completed_at__isnull=False)),
            in_progress=Count("pk", filter=open_now),
            expired=Count(
                "pk",
                filter=Q(state=State.EXPIRED)
                | Q(state__in=Activation.OPEN_STATES, expires_at__lte=now),
            ),
            locked=Count("pk", filter=Q(state=State.LOCKED)),
            revoked=Count("pk", filter=Q(state=State.REVOKED)),
            superseded=Count("pk", filter=Q(state=State.SUPERSEDED)),
        )
        .order_by()
    )
    # An account is made after the code is accepted; of those not completed (few: the ones
    # stuck there), the ones whose activation made or reset an account (a semi-join on the
    # audit trail's activation index, not a scan of the trail).
    made_account = AuditEvent.objects.filter(
        activation=OuterRef("pk"), action__in=[Action.ACCOUNT_CREATED, Action.PASSWORD_RESET]
    )
    accounts = (
        activations.filter(code_verified_at__isnull=False, completed_at__isnull=True)
        .filter(Exists(made_account))
        .annotate(week=TruncWeek("created_at"))
        .values("office_id", "week")
        .annotate(made=Count("pk"))
        .order_by()
    )
    cells: dict[tuple[datetime.date, int], FunnelRow] = {}

    def cell(week: datetime.datetime | datetime.date, office_id: int) -> FunnelRow:
        day = week.date() if isinstance(week, datetime.datetime) else week
        return cells.setdefault((day, office_id), FunnelRow())

    for row in rows:
        figures = {name: row[name] for name in COLUMNS if name in row}
        figures["account_created"] = row["key_active"]
        cell(row["week"], row["office_id"]).add(figures)
    for row in accounts:
        cell(row["week"], row["office_id"]).add({"account_created": row["made"]})

    if offices is None:
        ids = {office_id for _week, office_id in cells}
        offices = RegistrationOffice.objects.in_bulk(ids)
    total = FunnelRow()
    by_week: dict[datetime.date, FunnelRow] = {}
    by_office: dict[int, FunnelRow] = {}
    monday = monday_of(since)
    while monday <= until:  # every week of the period, the empty ones too
        by_week[monday] = FunnelRow()
        monday += timedelta(days=7)
    for (week, office_id), figures in cells.items():
        total.add(figures.counts)
        by_week.setdefault(week, FunnelRow()).add(figures.counts)
        by_office.setdefault(office_id, FunnelRow()).add(figures.counts)
    return Funnel(
        since=since,
        until=until,
        total=total,
        weeks=sorted(by_week.items()),
        offices=sorted(
            ((offices[pk], row) for pk, row in by_office.items() if pk in offices),
            key=lambda item: (-item[1]["issued"], item[0].name),
        ),
        cells=sorted(
            ((week, offices[pk], row) for (week, pk), row in cells.items() if pk in offices),
            key=lambda item: (item[0], item[1].name),
        ),
    )
