"""Fill the database with a country's worth of made-up data, for measuring (issue 11 §4).

``python manage.py seed_data --citizens 1000000`` adds citizens with valid, unique national
register numbers (about 3 % BIS numbers), Belgian names in Dutch, French and German (and the
names of newer Belgians: Çelik, Nowak, El Amrani…), e-mail addresses and mobile numbers, their
activations in every state with plausible timestamps over the last 12 months, the accounts and
digital keys of the completed ones, sign-in attempts and the audit trail.

Fast: rows are generated in Python and written per batch of citizens (one transaction each)
with PostgreSQL's ``COPY`` (``executemany`` on SQLite, for small numbers); nothing goes through
``Model.save()``, and no password is hashed (accounts get an unusable password).

Recognisable: every seeded office's code starts with ``seed-``, every seeded citizen's and
account's e-mail address ends with ``@example.invalid``, seeded clerks are ``seed.clerk.NNN``.
Seeded activations hold random hashes: no code or link opens them. Refuses to run when
``DEBUG`` is off unless ``--force`` is given. Running it again adds more citizens.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import json
import math
import os
import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max

from keys.conf import limits
from keys.digital_keys import get_kind
from keys.models import (
    Activation,
    AuditEvent,
    Citizen,
    DigitalKey,
    RegistrationOffice,
    SignInAttempt,
    User,
)
from keys.search import fold as fold_text
from keys.search import search_name as fold_search_name

# a few hundred names, folded a million times: remember them
fold = functools.lru_cache(maxsize=4096)(fold_text)
search_name = functools.lru_cache(maxsize=65536)(fold_search_name)

SEED_DOMAIN = "example.invalid"
OFFICE_PREFIX = "seed-"
CLERK_PREFIX = "seed.clerk."

# fmt: off
MUNICIPALITIES = [
    "Antwerpen", "Gent", "Charleroi", "Liège", "Brussel", "Schaerbeek", "Anderlecht", "Brugge",
    "Namur", "Leuven", "Molenbeek-Saint-Jean", "Mons", "Mechelen", "Aalst", "Ixelles", "Uccle",
    "La Louvière", "Hasselt", "Kortrijk", "Sint-Niklaas", "Oostende", "Tournai", "Genk",
    "Seraing", "Roeselare", "Verviers", "Mouscron", "Forest", "Beveren", "Jette", "Dendermonde",
    "Beringen", "Turnhout", "Etterbeek", "Vilvoorde", "Lokeren", "Sint-Truiden", "Herstal",
    "Mol", "Geel", "Braine-l'Alleud", "Châtelet", "Ninove", "Halle", "Evere", "Waregem",
    "Woluwe-Saint-Lambert", "Lier", "Tienen", "Ottignies-Louvain-la-Neuve", "Wavre", "Arlon",
    "Ieper", "Maasmechelen", "Lommel", "Brasschaat", "Grimbergen", "Schoten", "Binche",
    "Sint-Pieters-Leeuw", "Menen", "Wevelgem", "Heist-op-den-Berg", "Knokke-Heist", "Zaventem",
    "Ath", "Soignies", "Courcelles", "Waterloo", "Oudenaarde", "Diest", "Tongeren", "Bilzen",
    "Eeklo", "Deinze", "Zottegem", "Tielt", "Izegem", "Poperinge", "Diksmuide", "Veurne",
    "Huy", "Spa", "Malmedy", "Eupen", "Sankt Vith", "Kelmis", "Raeren", "Lontzen", "Büllingen",
    "Bütgenbach", "Amel", "Burg-Reuland", "Bastogne", "Marche-en-Famenne", "Dinant", "Ciney",
    "Gembloux", "Nivelles", "Jodoigne", "Péruwelz", "Enghien", "Comines-Warneton", "Fléron",
    "Chaudfontaine", "Esneux", "Aywaille", "Stavelot", "Bouillon", "Virton", "Florenville",
    "Chimay", "Couvin", "Philippeville", "Fosses-la-Ville", "Andenne", "Sambreville",
    "Fleurus", "Gerpinnes", "Thuin", "Lobbes", "Quaregnon", "Boussu", "Frameries", "Dour",
    "Zonhoven", "Houthalen-Helchteren", "Lanaken", "Bree", "Peer", "Neerpelt", "Herentals",
    "Boom", "Kapellen", "Zwijndrecht", "Temse", "Hamme", "Wetteren", "Zele", "Lebbeke",
    "Geraardsbergen", "Ronse", "Harelbeke", "Zwevegem", "Oostkamp", "Torhout", "Blankenberge",
    "De Panne", "Nieuwpoort", "Koksijde", "Middelkerke", "Bredene", "Zedelgem", "Aarschot",
    "Diegem", "Overijse", "Tervuren", "Kraainem", "Wezembeek-Oppem", "Dilbeek", "Asse",
]
LAST_NAMES = {
    "nl": [
        "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens",
        "Wouters", "De Smet", "Van den Broeck", "Vermeulen", "Hermans", "Pauwels", "Aerts",
        "De Vos", "Desmet", "Coppens", "Martens", "Van Damme", "Verstraete", "De Backer",
        "Stevens", "Michiels", "Declercq", "Lemmens", "Claeys", "Smets", "Van Dyck", "Segers",
        "Cools", "Wuyts", "Verhoeven", "Vandenberghe", "Van de Velde", "Van Acker", "D'Hondt",
        "Verbruggen", "Vervoort", "Bogaerts", "Geerts", "Thys", "Hendrickx", "De Wilde",
        "Verbeke", "Van Hoof", "Sels", "Callens", "De Coster", "Dewulf", "Van Goethem",
        "Vanhoutte", "Deprez", "Van Hecke", "Bosmans", "Moens", "Huybrechts", "Verlinden",
        "Gielen", "Luyten", "Nijs", "Sterckx", "Vanderlinden", "Op de Beeck", "Baert",
    ],
    "fr": [
        "Dubois", "Lambert", "Dupont", "Martin", "Simon", "Laurent", "Leclercq", "Lejeune",
        "Renard", "Dumont", "François", "Lefèvre", "Mathieu", "Collard", "Hubert", "Gérard",
        "Denis", "Lemaire", "Noël", "Thiry", "Fontaine", "Leroy", "Michel", "Goffin", "Gilson",
        "Delvaux", "Piron", "Lecomte", "Masson", "Dethier", "Bastin", "Delhaye", "Jadoul",
        "Wéry", "Lhoest", "Hérion", "Crèvecœur", "Lefèbvre", "Rémy", "Delforge", "Van Cauwenberghe",
        "Dessy", "Evrard", "Gillet", "Henrard", "Jacquemin", "Lefébure", "Marchal", "Poncelet",
        "Quintin", "Stassart", "Thonon", "Collignon", "Brasseur", "Bodart", "Defays", "Hanquet",
    ],
    "de": [
        "Müller", "Schmitz", "Schröder", "Lenz", "Kessler", "Theissen", "Kohnen", "Hilgers",
        "Mreyen", "Jöbkes", "Schür", "Weißhaupt", "Brüll", "Krings", "Heinen", "Förster",
        "Göbbels", "Lambertz", "Pankert", "Radermacher", "Völl", "Zimmermann",
    ],
    "other": [
        "Çelik", "Yılmaz", "Öztürk", "Şahin", "Kaya", "Demir", "El Amrani", "Benali", "Bouzid",
        "Aït Ouali", "El Idrissi", "Boukhari", "Nowak", "Kowalski", "Wiśniewski", "Wójcik",
        "Popescu", "Ionescu", "Rossi", "Esposito", "García", "Fernández", "Gonçalves", "Nguyen",
        "Tran", "Diallo", "Mukendi", "Kabongo", "Dvořák", "Novák", "Horváth", "Øberg",
        "Kovačević", "Petrović", "Georgiou", "Papadopoulos", "Ahmadi", "Haddad", "Li", "Ng",
    ],
}
FIRST_NAMES = {
    "nl": [
        "Jan", "Marc", "Luc", "Peter", "Koen", "Tom", "Bart", "Dirk", "Wim", "Pieter", "Lucas",
        "Noah", "Arthur", "Louis", "Liam", "Jules", "Finn", "Wout", "Emma", "Olivia", "Louise",
        "Mila", "Marie", "An", "Els", "Sofie", "Lotte", "Eline", "Hanne", "Lieve", "Griet",
        "Anneleen", "Nele", "Ine", "Jef", "Stijn", "Jens", "Seppe", "Febe", "Noor", "Zoë",
        "Renée", "Anaïs", "Geert", "Kristof", "Joke", "Hilde", "Ilse", "Rik", "Maarten",
    ],
    "fr": [
        "Jean", "Pierre", "Michel", "Philippe", "Jean-Pierre", "Jacques", "Benoît", "François",
        "Hélène", "Céline", "Amélie", "Valérie", "Nathalie", "Chloé", "Léa", "Inès", "Zoé",
        "Jérôme", "Grégoire", "Théo", "Noé", "Maëlle", "Océane", "Loïc", "Cédric", "Rémi",
        "Gaëlle", "Léon", "Héloïse", "Joël", "Frédéric", "Sébastien", "Aurélie", "Ségolène",
        "Marie-Christine", "Anne-Sophie", "Guillaume", "Isabelle", "Élise", "Adèle", "Raphaël",
    ],
    "de": [
        "Jürgen", "Günter", "Jörg", "Björn", "Uwe", "Klaus", "Sabine", "Ursula", "Käthe",
        "Lukas", "Jonas", "Lena", "Anna", "Mia", "Sören", "Jörn", "Franziska", "Tobias",
    ],
    "other": [
        "Mehmet", "Ayşe", "Fatma", "Mustafa", "Yusuf", "Elif", "Mohamed", "Fatima", "Youssef",
        "Khadija", "Karim", "Amina", "Piotr", "Agnieszka", "Małgorzata", "Łukasz", "Giulia",
        "Marco", "José", "María", "João", "Thi Huong", "Minh", "Ana", "Ioana", "Andrei",
        "Aïcha", "Moussa", "Dragan", "Nikos", "Reza", "Wei",
    ],
}
# fmt: on
REGIONS = ("nl", "fr", "de", "other")
REGION_WEIGHTS = (55, 36, 1, 8)
OTHER_LANGUAGES = ("en", "fr", "nl")
OTHER_LANGUAGE_WEIGHTS = (40, 35, 25)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
IP_PREFIXES = ("81.82", "81.164", "109.128", "109.132", "178.116", "84.192", "91.180", "213.118")

# What becomes of a citizen's (last) activation, with weights; a few are reissued first.
FATES = {
    "completed": 66,
    "issued": 9,
    "opened": 5,
    "code_verified": 3,
    "locked": 3,
    "expired": 6,
    "revoked": 3,
}
REISSUED_SHARE = 0.07  # an earlier activation superseded by a reissue
# The first citizens of every run take each fate in turn, recent enough that the open states
# are still open: every state is present even in a tiny seed.
FIRST_FATES = (
    "completed",
    "issued",
    "opened",
    "code_verified",
    "locked",
    "expired",
    "revoked",
    "reissued",
)
KEY_KINDS = ("totp", "sms", "email")
KEY_KIND_WEIGHTS = (55, 25, 20)

COLUMNS = {
    User: (
        "id", "password", "last_login", "is_superuser", "username", "username_canonical",
        "first_name", "last_name", "email", "office_id", "session_version", "is_staff",
        "is_active", "date_joined",
    ),
    Citizen: (
        "id", "first_name", "last_name", "national_number", "birth_date", "email", "phone",
        "language", "id_document_type", "id_document_number", "office_id", "registered_by_id",
        "account_id", "created_at", "updated_at", "search_name",
    ),
    Activation: (
        "id", "citizen_id", "office_id", "issued_by_id", "state", "link_token_hash", "code_hash",
        "failed_code_attempts", "expires_at", "created_at", "opened_at", "code_verified_at",
        "completed_at", "closed_at", "superseded_by_id", "email_status", "email_sent_at",
        "terms_version", "terms_accepted_at",
    ),
    DigitalKey: (
        "id", "user_id", "kind", "state", "phone", "email", "secret_encrypted", "last_totp_step",
        "failed_attempts", "locked_until", "activation_id", "created_at", "activated_at",
        "last_used_at", "removed_at", "one_per_account",
    ),
    SignInAttempt: ("id", "username_canonical", "ip_address", "succeeded", "created_at"),
    AuditEvent: (
        "id", "created_at", "action", "actor_id", "actor_label", "citizen_id", "activation_id",
        "ip_address", "user_agent", "detail",
    ),
}  # fmt: skip
TABLES = tuple(COLUMNS)  # the order rows are written in
LABELS = {
    User: "accounts",
    Citizen: "citizens",
    Activation: "activations",
    DigitalKey: "digital keys",
    SignInAttempt: "sign-in attempts",
    AuditEvent: "audit events",
}
A = AuditEvent.Action
S = Activation.State


class Weighted:
    """A weighted choice with its cumulative weights computed once (``random.choices``
    recomputes them on every call: a tenth of the run time with 581 offices)."""

    def __init__(self, options: tuple | list, weights: tuple | list) -> None:
        self.options = tuple(options)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def __call__(self, rng: random.Random) -> Any:
        return self.options[bisect.bisect(self.cumulative, rng.random() * self.total)]


PICK_REGION = Weighted(REGIONS, REGION_WEIGHTS)
PICK_OTHER_LANGUAGE = Weighted(OTHER_LANGUAGES, OTHER_LANGUAGE_WEIGHTS)
PICK_DOCUMENT = Weighted(("id_card", "residence_permit", "passport", "other"), (75, 12, 10, 3))
PICK_FATE = Weighted(tuple(FATES), tuple(FATES.values()))
PICK_EMAIL_STATUS = Weighted(("sent", "failed", "pending"), (985, 10, 5))
PICK_KEY_KIND = Weighted(KEY_KINDS, KEY_KIND_WEIGHTS)


def national_number(rng: random.Random, born: date, bis: bool) -> str:
    """A valid national register (or BIS) number for someone born on ``born``."""
    month = born.month + (rng.choice((20, 40)) if bis else 0)
    first_nine = f"{born.year % 100:02d}{month:02d}{born.day:02d}{rng.randint(1, 997):03d}"
    base = int(first_nine) + (2_000_000_000 if born.year >= 2000 else 0)
    return f"{first_nine}{97 - base % 97:02d}"


class Seeder:
    """Generates the rows of one citizen's story at a time, with ids assigned here."""

    def __init__(self, rng: random.Random, now: datetime, offices: list, used: set[str]) -> None:
        self.rng = rng
        self.now = now
        self.offices = offices  # (id, code, clerk id, clerk username)
        self.pick_office = Weighted(offices, [rng.paretovariate(1.3) for _ in offices])
        self.used_numbers = used
        self.next_id = {model: self._max_id(model) + 1 for model in TABLES}
        self.rows: dict[Any, list[tuple]] = {model: [] for model in TABLES}
        self.states: Counter[str] = Counter()
        self.ttl = limits.ACTIVATION_LINK_TTL
        self.terms = limits.TERMS_VERSION
        self.oldest_birth = date(now.year - 90, 1, 1)
        self.youngest_birth = date(now.year - limits.MINIMUM_AGE_YEARS - 1, now.month, 1)
        self.birth_span = (self.youngest_birth - self.oldest_birth).days

    @staticmethod
    def _max_id(model: Any) -> int:
        return model.objects.aggregate(top=Max("id"))["top"] or 0

    def _id(self, model: Any) -> int:
        value = self.next_id[model]
        self.next_id[model] = value + 1
        return value

    def take_rows(self) -> dict[Any, list[tuple]]:
        rows, self.rows = self.rows, {model: [] for model in TABLES}
        return rows

    # -- pieces --------------------------------------------------------------------------------

    def _moment(self, earliest: datetime, latest: datetime) -> datetime:
        span = max((latest - earliest).total_seconds(), 0)
        return earliest + timedelta(seconds=self.rng.random() * span)

    def _registration_time(self, recent: bool) -> datetime:
        """Office hours on a working day, within the last year (the last days when recent)."""
        rng = self.rng
        days_ago = rng.uniform(0.5, 9) if recent else rng.uniform(0.5, 365)
        day = self.now - timedelta(days=days_ago)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        moment = day.replace(hour=rng.randint(7, 15), minute=rng.randint(0, 59))
        moment = moment.replace(second=rng.randint(0, 59), microsecond=rng.randint(0, 999_999))
        return min(moment, self.now - timedelta(hours=6))

    def _ip(self) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            return f"2a02:a03f:{rng.randint(0, 0xFFFF):x}:{rng.randint(0, 0xFFFF):x}::1"
        return f"{rng.choice(IP_PREFIXES)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def _audit(
        self,
        when: datetime,
        action: str,
        citizen_id: int,
        activation_id: int | None,
        actor: tuple[int | None, str],
        device: tuple[str | None, str] = (None, ""),
        **detail: Any,
    ) -> None:
        self.rows[AuditEvent].append(
            (
                self._id(AuditEvent),
                when,
                action,
                actor[0],
                actor[1],
                citizen_id,
                activation_id,
                device[0],
                device[1],
                detail,
            )
        )

    def _person(self) -> tuple[str, str, str]:
        rng = self.rng
        region = PICK_REGION(rng)
        last_names, first_names = LAST_NAMES[region], FIRST_NAMES[region]
        # common names are common: a Zipf-like choice
        last = last_names[min(int(rng.paretovariate(0.9)) - 1, len(last_names) - 1)]
        if rng.random() < 0.5:
            last = rng.choice(last_names)
        first = rng.choice(first_names)
        language = PICK_OTHER_LANGUAGE(rng) if region == "other" else region
        return first, last, language

    def _birth(self) -> date:
        return self.oldest_birth + timedelta(days=self.rng.randrange(self.birth_span))

    def _document(self) -> tuple[str, str]:
        rng = self.rng
        kind = PICK_DOCUMENT(rng)
        if kind == "id_card":
            return kind, f"{rng.randint(590, 599)}{rng.randint(0, 999_999_999):09d}"
        if kind == "residence_permit":
            return kind, f"B{rng.randint(0, 999_999_999):09d}"
        if kind == "passport":
            return kind, f"E{rng.choice('HJKMNP')}{rng.randint(0, 999_999):06d}"
        return kind, f"X{rng.randint(0, 99_999_999):08d}"

    # -- one citizen ---------------------------------------------------------------------------

    def citizen(self, index: int) -> None:
        rng = self.rng
        fate = FIRST_FATES[index] if index < len(FIRST_FATES) else None
        first, last, language = self._person()
        while True:
            born = self._birth()
            number = national_number(rng, born, bis=rng.random() < 0.03)
            if number not in self.used_numbers:
                self.used_numbers.add(number)
                break
        office_id, office_code, clerk_id, clerk_name = self.pick_office(rng)
        clerk = (clerk_id, clerk_name)
        self._office_code = office_code
        citizen_id = self._id(Citizen)
        folded_first, folded_last = (fold(first).replace(" ", ""), fold(last).replace(" ", ""))
        email = f"{folded_first}.{folded_last}.{citizen_id}@{SEED_DOMAIN}"
        phone = (
            f"+3247{rng.randint(0, 9)}{rng.randint(0, 999_999):06d}" if rng.random() < 0.7 else ""
        )
        registered = self._registration_time(recent=fate in Activation.OPEN_STATES)
        document = self._document()
        device = (self._ip(), rng.choice(USER_AGENTS))
        self._audit(
            registered,
            A.CITIZEN_REGISTERED,
            citizen_id,
            None,
            clerk,
            office=office_code,
            document_type=document[0],
        )

        issued = registered + timedelta(seconds=rng.randint(5, 90))
        reissued = fate == "reissued" or (fate is None and rng.random() < REISSUED_SHARE)
        if fate in (None, "reissued"):
            fate = PICK_FATE(rng)
            if reissued:
                fate = "completed" if rng.random() < 0.8 else fate
        if reissued:
            # the first activation was superseded by a reissue (a lost letter, a locked code)
            again = issued + timedelta(days=rng.uniform(1, 40))
            if again < self.now - timedelta(days=1):
                first_id = self._id(Activation)
                final_id = self.next_id[Activation]
                opened = issued + timedelta(hours=rng.expovariate(1 / 20))
                opened = opened if opened < again and rng.random() < 0.5 else None
                self._activation(
                    first_id, citizen_id, office_id, clerk, issued, S.SUPERSEDED, device,
                    opened=opened, closed=again, superseded_by=final_id,
                )  # fmt: skip
                self._audit(
                    again, A.ACTIVATION_SUPERSEDED, citizen_id, first_id, clerk,
                    superseded_by=final_id,
                )  # fmt: skip
                issued = again
        account = self._story(
            citizen_id, office_id, clerk, issued, fate, device, email, first, last
        )
        self.rows[Citizen].append(
            (
                citizen_id,
                first,
                last,
                number,
                born,
                email,
                phone,
                language,
                document[0],
                document[1],
                office_id,
                clerk_id,
                account,
                registered,
                issued,
                search_name(first, last),
            )
        )
        self._keys_and_signins(account, citizen_id, phone, email)

    def _activation(
        self,
        activation_id: int,
        citizen_id: int,
        office_id: int,
        clerk: tuple[int, str],
        issued: datetime,
        state: str,
        device: tuple[str, str],
        *,
        opened: datetime | None = None,
        verified: datetime | None = None,
        completed: datetime | None = None,
        closed: datetime | None = None,
        superseded_by: int | None = None,
        failed: int = 0,
    ) -> None:
        rng = self.rng
        sent = issued + timedelta(seconds=rng.randint(2, 40))
        email_status = PICK_EMAIL_STATUS(rng)
        terms = verified + timedelta(seconds=rng.randint(20, 200)) if verified else None
        self.rows[Activation].append(
            (
                activation_id,
                citizen_id,
                office_id,
                clerk[0],
                state,
                os.urandom(32).hex(),
                os.urandom(32).hex(),
                failed,
                issued + self.ttl,
                issued,
                opened,
                verified,
                completed,
                closed,
                superseded_by,
                email_status,
                sent if email_status == "sent" else None,
                self.terms if terms else "",
                terms,
            )
        )
        effective = state
        if state in Activation.OPEN_STATES and issued + self.ttl <= self.now:
            effective = S.EXPIRED
        self.states[state] += 1
        self.states[f"effective:{effective}"] += 1
        self._audit(
            issued, A.ACTIVATION_ISSUED, citizen_id, activation_id, clerk, office=self._office_code
        )
        system = (None, "system")
        if email_status == "sent":
            self._audit(sent, A.EMAIL_SENT, citizen_id, activation_id, system)
        elif email_status == "failed":
            self._audit(sent, A.EMAIL_FAILED, citizen_id, activation_id, system)
        person = (None, "citizen")
        if opened:
            self._audit(opened, A.LINK_OPENED, citizen_id, activation_id, person, device)
        for attempt in range(failed):
            when = (opened or issued) + timedelta(seconds=30 * (attempt + 1))
            self._audit(when, A.CODE_REJECTED, citizen_id, activation_id, person, device)
        if state == S.LOCKED and closed:
            self._audit(closed, A.ACTIVATION_LOCKED, citizen_id, activation_id, person, device)
        if verified:
            self._audit(verified, A.CODE_ACCEPTED, citizen_id, activation_id, person, device)

    def _story(
        self,
        citizen_id: int,
        office_id: int,
        clerk: tuple[int, str],
        issued: datetime,
        fate: str,
        device: tuple[str, str],
        email: str,
        first: str,
        last: str,
    ) -> int | None:
        """The citizen's last activation and what became of it; returns the account id."""
        rng = self.rng
        activation_id = self._id(Activation)
        deadline = issued + self.ttl
        opened = issued + timedelta(hours=min(rng.expovariate(1 / 18), 300))
        if opened >= self.now:
            opened = self._moment(issued, self.now)
        verified = opened + timedelta(seconds=rng.randint(40, 600))
        finished = verified + timedelta(seconds=rng.randint(120, 900))
        if finished >= self.now and fate == "completed":
            fate = "code_verified"
        person = (None, "citizen")
        args = (activation_id, citizen_id, office_id, clerk, issued)
        if fate == "completed":
            self._activation(
                *args, S.COMPLETED, device, opened=opened, verified=verified,
                completed=finished, closed=finished,
            )  # fmt: skip
            return self._account(activation_id, citizen_id, finished, device, email, first, last)
        if fate == "issued":
            self._activation(*args, S.ISSUED, device)
        elif fate == "opened":
            self._activation(*args, S.OPENED, device, opened=opened)
        elif fate == "code_verified":
            self._activation(*args, S.CODE_VERIFIED, device, opened=opened, verified=verified)
        elif fate == "locked":
            closed = opened + timedelta(seconds=200)
            self._activation(*args, S.LOCKED, device, opened=opened, closed=closed, failed=5)
        elif fate == "expired":
            # the link was used after its 14 days: the wizard closed it then
            late = deadline + timedelta(hours=rng.uniform(1, 24 * 30))
            if late >= self.now:
                self._activation(*args, S.ISSUED, device)
                return None
            self._activation(*args, S.EXPIRED, device, closed=late)
            self._audit(late, A.ACTIVATION_EXPIRED, citizen_id, activation_id, person, device)
        elif fate == "revoked":
            closed = self._moment(issued, min(deadline, self.now))
            self._activation(*args, S.REVOKED, device, closed=closed)
            self._audit(closed, A.ACTIVATION_REVOKED, citizen_id, activation_id, clerk)
        return None

    def _account(
        self,
        activation_id: int,
        citizen_id: int,
        completed: datetime,
        device: tuple[str, str],
        email: str,
        first: str,
        last: str,
    ) -> int:
        rng = self.rng
        user_id = self._id(User)
        folded_first = fold(first).replace(" ", "")
        folded_last = fold(last).replace(" ", "")
        style = rng.randrange(3)
        if style == 0:
            username = f"{folded_first}.{folded_last}.{citizen_id}"
        elif style == 1:
            username = f"{folded_first[:1]}{folded_last}{citizen_id}"
        else:
            username = f"{folded_last}_{folded_first}{citizen_id}"
        username = username[:64]
        created = completed - timedelta(seconds=rng.randint(60, 400))
        self.rows[User].append(
            (
                user_id,
                UNUSABLE_PASSWORD_PREFIX + os.urandom(8).hex(),
                None,
                False,
                username,
                username,
                first,
                last,
                email,
                None,
                0,
                False,
                True,
                created,
            )
        )
        person = (user_id, username)
        self._audit(created, A.ACCOUNT_CREATED, citizen_id, activation_id, person, device)
        kind = PICK_KEY_KIND(rng)
        self._pending_key = (user_id, username, activation_id, kind, created, completed, device)
        self._audit(
            completed, A.KEY_ACTIVATED, citizen_id, activation_id, person, device, kind=kind
        )
        self._audit(completed, A.ACTIVATION_COMPLETED, citizen_id, activation_id, person, device)
        return user_id

    def _keys_and_signins(
        self, user_id: int | None, citizen_id: int, phone: str, email: str
    ) -> None:
        if user_id is None:
            return
        rng = self.rng
        _, username, activation_id, kind, created, completed, device = self._pending_key
        # sign-ins since the activation: most people sign in now and then, a few never
        count = min(int(rng.expovariate(1 / 1.6)), 12)
        moments = sorted(self._moment(completed, self.now) for _ in range(count))
        last_used = None
        for moment in moments:
            succeeded = rng.random() > 0.1
            ip = device[0] if rng.random() < 0.7 else self._ip()
            self.rows[SignInAttempt].append(
                (self._id(SignInAttempt), username, ip, succeeded, moment)
            )
            action = A.SIGNIN_SUCCEEDED if succeeded else A.SIGNIN_FAILED
            self._audit(moment, action, citizen_id, None, (user_id, username), (ip, device[1]))
            if succeeded:
                last_used = moment
        blocked = rng.random() < 0.02
        self._key(
            user_id, kind, "blocked" if blocked else "active", phone, email, activation_id,
            created, completed, last_used,
        )  # fmt: skip
        if blocked:
            self._audit(
                self._moment(completed, self.now), A.KEY_BLOCKED, citizen_id, None,
                (None, "seed.helpdesk"), kind=kind, reason="Phone reported stolen",
            )  # fmt: skip
        if rng.random() < 0.1:
            other = rng.choice([k for k in KEY_KINDS if k != kind])
            added = self._moment(completed, self.now)
            removed = rng.random() < 0.2
            self._key(
                user_id, other, "removed" if removed else "active", phone, email, None,
                added, added, None, removed_at=self._moment(added, self.now) if removed else None,
            )  # fmt: skip

    def _key(
        self,
        user_id: int,
        kind: str,
        state: str,
        phone: str,
        email: str,
        activation_id: int | None,
        created: datetime,
        activated: datetime,
        last_used: datetime | None,
        removed_at: datetime | None = None,
    ) -> None:
        rng = self.rng
        key_phone = (
            (phone or f"+3247{rng.randint(0, 9)}{rng.randint(0, 999_999):06d}")
            if kind == "sms"
            else ""
        )
        self.rows[DigitalKey].append(
            (
                self._id(DigitalKey),
                user_id,
                kind,
                state,
                key_phone,
                email if kind == "email" else "",
                "",
                None,
                0,
                None,
                activation_id,
                created,
                activated,
                last_used,
                removed_at,
                not get_kind(kind).several_per_account,
            )
        )


class Writer:
    """Writes generated rows: COPY on PostgreSQL, executemany elsewhere."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.skip_triggers = self.postgres and self._superuser()
        self.fields = {
            model: [
                next(f for f in model._meta.concrete_fields if f.column == column)
                for column in columns
            ]
            for model, columns in COLUMNS.items()
        }

    @staticmethod
    def _superuser() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cursor.fetchone()
        return bool(row and row[0])

    def write(self, rows: dict[Any, list[tuple]]) -> None:
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute("SET LOCAL synchronous_commit = off")
            if self.skip_triggers:
                # The rows reference each other correctly by construction: skip the deferred
                # foreign-key checks (one trigger a row and a reference) as pg_restore does.
                cursor.execute("SET LOCAL session_replication_role = replica")
            for model in TABLES:
                if rows[model]:
                    self._write(cursor, model, rows[model])
            for sql in connection.ops.sequence_reset_sql(no_style(), TABLES):
                cursor.execute(sql)

    def _write(self, cursor: Any, model: Any, rows: list[tuple]) -> None:
        table = connection.ops.quote_name(model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(c) for c in COLUMNS[model])
        if self.postgres:
            json_at = COLUMNS[model].index("detail") if model is AuditEvent else None
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    if json_at is not None:
                        detail = json.dumps(row[json_at]) if row[json_at] else "{}"
                        row = (*row[:json_at], detail, *row[json_at + 1 :])
                    copy.write_row(row)
            return
        fields = self.fields[model]
        prepared = [
            tuple(
                field.get_db_prep_save(value, connection)
                for field, value in zip(fields, row, strict=True)
            )
            for row in rows
        ]
        marks = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 - our names
        cursor.executemany(sql, prepared)


@contextlib.contextmanager
def indexes_built_afterwards(enabled: bool) -> Any:
    """On PostgreSQL, drop the seeded tables' secondary indexes (not those of a primary key or
    unique constraint) while loading and build them again at the end: much faster than keeping
    a trigram index and six audit indexes up to date row by row. Rebuilt even when interrupted."""
    if not enabled or connection.vendor != "postgresql":
        yield
        return
    tables = [model._meta.db_table for model in TABLES]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint WHERE conname = indexname)",
            [tables],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(name)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                cursor.execute(definition)
            for table in tables:
                # statistics for the planner, and the visibility map that lets PostgreSQL
                # answer from an index alone (the funnel's covering index)
                cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")


class Command(BaseCommand):
    help = (
        "Add made-up citizens, activations in every state, accounts, keys, sign-ins and audit "
        "events, for measuring at scale (offices seed-*, e-mails @example.invalid)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--citizens", type=int, default=1000, help="how many (default 1000)")
        parser.add_argument(
            "--offices", type=int, default=581, help="seed offices to create when there are none"
        )
        parser.add_argument("--batch", type=int, default=5000, help="citizens a transaction")
        parser.add_argument("--seed", type=int, default=None, help="random seed (repeatable)")
        parser.add_argument(
            "--keep-indexes",
            action="store_true",
            help="keep PostgreSQL's indexes while loading (the default from 100 000 citizens is "
            "to drop the secondary ones and build them at the end)",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="run even though DEBUG is off (never in production)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_data fills the database with made-up people; DEBUG is off, so this may be "
                "a real database. Use --force if it is not."
            )
        total = options["citizens"]
        if total < 1:
            raise CommandError("--citizens must be at least 1.")
        started = time.monotonic()
        rng = random.Random(options["seed"])  # noqa: S311 - made-up data, not secrets
        offices = self._offices(rng, options["offices"])
        used = set(Citizen.objects.values_list("national_number", flat=True).iterator(50_000))
        seeder = Seeder(rng, datetime.now(UTC), offices, used)
        writer = Writer()
        counts: Counter[str] = Counter()
        progress, task = self._progress(total)
        done = 0
        rebuild = total >= 100_000 and not options["keep_indexes"]
        try:
            with indexes_built_afterwards(rebuild):
                while done < total:
                    size = min(options["batch"], total - done)
                    for index in range(done, done + size):
                        seeder.citizen(index)
                    rows = seeder.take_rows()
                    with transaction.atomic():
                        writer.write(rows)
                    for model, model_rows in rows.items():
                        counts[LABELS[model]] += len(model_rows)
                    done += size
                    self._advance(progress, task, done, total, started)
                if progress is not None:
                    progress.update(task, description="indexes")
        finally:
            if progress is not None:
                progress.stop()
        elapsed = time.monotonic() - started
        summary = ", ".join(f"{count} {name}" for name, count in counts.items())
        states = ", ".join(
            f"{state} {count}"
            for state, count in sorted(seeder.states.items())
            if not state.startswith("effective:")
        )
        self.stdout.write(f"Seeded in {elapsed:.0f} s: {summary}.")
        self.stdout.write(f"Activations by state: {states}.")

    def _offices(self, rng: random.Random, wanted: int) -> list[tuple[int, str, int, str]]:
        """The seed offices (created when there are none) and a clerk of each."""
        existing = RegistrationOffice.objects.filter(code__startswith=OFFICE_PREFIX)
        if not existing.exists():
            names = list(MUNICIPALITIES)
            for number in range(len(names), wanted):
                names.append(f"Registratiekantoor {number + 1:03d}")
            RegistrationOffice.objects.bulk_create(
                RegistrationOffice(
                    code=f"{OFFICE_PREFIX}{number + 1:03d}",
                    name=name,
                    address=f"Marktplein {rng.randint(1, 60)}, {name}",
                )
                for number, name in enumerate(names[:wanted])
            )
        group = Group.objects.filter(name="Registration office").first()
        result = []
        for office in RegistrationOffice.objects.filter(code__startswith=OFFICE_PREFIX):
            username = f"{CLERK_PREFIX}{office.code.removeprefix(OFFICE_PREFIX)}"
            clerk = User.objects.filter(username_canonical=username).first()
            if clerk is None:
                clerk = User(
                    username=username,
                    email=f"{username}@{SEED_DOMAIN}",
                    is_staff=True,
                    office=office,
                )
                clerk.set_unusable_password()
                clerk.save()
                if group is not None:
                    clerk.groups.add(group)
            result.append((office.pk, office.code, clerk.pk, clerk.username))
        return result

    def _progress(self, total: int) -> tuple[Any, Any]:
        if not self.stdout.isatty():
            return None, None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(
            TextColumn("citizens"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=getattr(self.stdout, "_out", self.stdout)),
        )
        progress.start()
        return progress, progress.add_task("citizens", total=total)

    def _advance(self, progress: Any, task: Any, done: int, total: int, started: float) -> None:
        if progress is not None:
            progress.update(task, completed=done)
            return
        step = max(total // 10, 1)
        if done == total or done // step != (done - 1) // step:
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"{done}/{total} citizens ({math.floor(rate)} a second)")
