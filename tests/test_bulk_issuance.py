"""manage.py issue_activation --csv: one activation per row, checked like a clerk's entry."""

import json
import os
import re
import stat
from datetime import date
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import override_settings

from keys import tokens
from keys.models import Activation, AuditEvent, Citizen
from keys.services import issuance
from tests.test_issuance import FAILING_MAILERS
from tests.test_validators import check_digits

HEADER = "first_name,last_name,national_number,email,phone,language,document_type,document_number"
CODE = re.compile(r'<p class="code">([0-9A-Z]{5}-[0-9A-Z]{5})</p>')
LINK_TOKEN = re.compile(r"/activeren/([A-Za-z0-9_-]+)/")


def number(first_nine: str, *, dotted: bool = True) -> str:
    digits = first_nine + check_digits(first_nine)
    if not dotted:
        return digits
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}-{digits[6:9]}.{digits[9:11]}"


MARIE = (
    f"Marie,Dubois,{number('900101123')},Marie.Dubois@Example.be,0470 12 34 56,fr,passport,"
    "EM 123456"
)
KARL = f"Karl,Schmitz,{number('751224456', dotted=False)},karl@example.be,,DE,id_card,591234567890"
AN = (
    f"An,Janssens,{number('820515789')},an.janssens@example.be,+32 478 11 22 33,nl,"
    "residence_permit,B1234567"
)
GOOD = [MARIE, KARL, AN]


def write(tmp_path, rows: list[str], *, name: str = "people.csv", bom: bool = False) -> str:
    path = tmp_path / name
    text = "\n".join([HEADER, *rows]) + "\n"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return str(path)


def bulk(path: str, *, stdout=None, **options) -> tuple[str, str, CommandError | None]:
    out, err = stdout or StringIO(), StringIO()
    options.setdefault("office", "leuven")
    try:
        call_command("issue_activation", csv=path, stdout=out, stderr=err, **options)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def check_link(activation: Activation, link: str) -> None:
    token = LINK_TOKEN.search(link).group(1)
    assert activation.link_token_hash == tokens.hash_link_token(token)


def test_issues_one_activation_a_row_and_writes_one_letters_file(office, other_office, tmp_path):
    letters = tmp_path / "letters.html"
    out, err, error = bulk(write(tmp_path, GOOD, bom=True), letters=str(letters))
    assert error is None, (out, err)
    activations = list(Activation.objects.order_by("pk").select_related("citizen"))
    assert [a.citizen.last_name for a in activations] == ["Dubois", "Schmitz", "Janssens"]
    assert {a.office for a in activations} == {office}
    assert {a.citizen.office for a in activations} == {office}
    assert all(a.state == Activation.State.ISSUED for a in activations)
    # checked and normalised exactly like a clerk's entry
    marie = Citizen.objects.get(last_name="Dubois")
    assert marie.national_number == "90010112395"
    assert marie.email == "marie.dubois@example.be"
    assert marie.phone == "+32470123456"
    assert marie.id_document_number == "EM123456"
    assert Citizen.objects.get(last_name="Schmitz").language == "de"
    # every link e-mailed, in the citizen's language, without the code
    assert sorted(m.to[0] for m in mail.outbox) == [
        "an.janssens@example.be",
        "karl@example.be",
        "marie.dubois@example.be",
    ]
    # the plain output (stdout is not a terminal): one line per row, then the summary
    ids = [a.pk for a in activations]
    assert out.splitlines() == [
        f"line 2: issued activation {ids[0]} to Marie Dubois",
        f"line 3: issued activation {ids[1]} to Karl Schmitz",
        f"line 4: issued activation {ids[2]} to An Janssens",
        "3 rows: 3 issued, 0 not issued.",
        f"Letters: {letters} (3 pages). Print it now and delete it: the codes are shown "
        "nowhere else.",
    ]
    # nothing secret in the output
    for activation in activations:
        assert activation.code_hash not in out
    assert "/activeren/" not in out
    # the letters: one A4 page per citizen, each code once, in the citizen's language
    html = letters.read_text()
    codes = CODE.findall(html)
    assert len(codes) == 3
    for activation, code in zip(activations, codes, strict=True):
        assert tokens.check_activation_code(code, activation.code_hash)
        assert html.count(code) == 1
        assert html.count(code.replace("-", "")) == 0
    assert html.count('<article class="letter"') == 3
    assert "Votre code d'activation" in html  # Marie: French
    assert "Ihr Aktivierungscode" in html  # Karl: German
    assert "Uw activatiecode" in html  # An: Dutch
    assert "break-after: page" in html and "@page { size: A4" in html
    # nothing else secret: no link, no token, no hash
    assert "/activeren/" not in html
    for activation in activations:
        assert activation.code_hash not in html
        assert activation.link_token_hash not in html
    for message in mail.outbox:
        token = LINK_TOKEN.search(message.body).group(1)
        assert token not in html
        assert not any(code in message.body for code in codes)
    # readable by its owner only
    assert stat.S_IMODE(os.stat(letters).st_mode) == 0o600
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LETTER_SHOWN).count() == 3
    assert (
        AuditEvent.objects.filter(
            action=AuditEvent.Action.ACTIVATION_ISSUED,
            actor_label="manage.py issue_activation",
            detail__office="leuven",
        ).count()
        == 3
    )


def test_json_lines_one_per_row(office, tmp_path):
    bad = f"Jo,Bad,{number('900101123')[:-1]}7,jo@example.be,,nl,id_card,1"
    out, err, error = bulk(write(tmp_path, [MARIE, bad, KARL]), json=True)
    assert error is not None and error.returncode == 1
    rows = json_lines(out)
    assert [row["line"] for row in rows] == [2, 3, 4]
    assert [row["status"] for row in rows] == ["issued", "refused", "issued"]
    for row in (rows[0], rows[2]):
        activation = Activation.objects.get(pk=row["id"])
        assert tokens.check_activation_code(row["activation_code"], activation.code_hash)
        check_link(activation, row["activation_link"])
        assert row["email_sent"] is True
    assert "/fr/activeren/" in rows[0]["activation_link"]
    assert rows[1] == {
        "line": 3,
        "status": "refused",
        "reason": "national_number: This national register number is not valid: the check "
        "digits do not match.",
    }
    # the summary goes to stderr so that stdout stays one JSON object a line
    assert "3 rows: 2 issued, 1 not issued." in err


def test_each_kind_of_bad_row_is_reported_and_does_not_stop_the_others(
    office, other_office, clerk, tmp_path
):
    # a person who already has an open activation (from the counter, at another office)
    known = Citizen.objects.create(
        first_name="Els",
        last_name="Maes",
        national_number=number("680229321", dotted=False),
        email="els@example.be",
        language="nl",
        id_document_type="id_card",
        id_document_number="1",
        office=other_office,
    )
    issuance.issue_activation(known, issued_by=None)
    mail.outbox.clear()
    eleven = f"{date.today().year - 2000 - 11:02d}0101123"  # eleven years old this year
    young_digits = eleven + check_digits(eleven, born_2000s=True)
    rows = [
        MARIE,  # 2
        f"Piet,Bad,{number('900101123')[:-1]}7,piet@example.be,,nl,id_card,1",  # 3
        "Piet,Short,1234,piet@example.be,,nl,id_card,1",  # 4
        f"Piet,Mail,{number('700101001')},piet@,,nl,id_card,1",  # 5
        f"Els,Maes,{number('680229321')},els@example.be,,nl,id_card,1",  # 6
        f"Piet,Phone,{number('700101002')},p@example.be,02 740 79 91,nl,id_card,1",  # 7
        f"Piet,Lang,{number('700101003')},p3@example.be,,xx,id_card,1",  # 8
        f",Nameless,{number('700101004')},p4@example.be,,nl,id_card,1",  # 9
        f"Piet,Fields,{number('700101005')},p5@example.be,,nl,id_card",  # 10
        MARIE,  # 11: the same person twice in one file
        f"Kid,Young,{young_digits},kid@example.be,,nl,id_card,1",  # 12
        KARL,  # 13
    ]
    out, _, error = bulk(write(tmp_path, rows), json=True)
    assert str(error) == "10 rows not issued (see the reasons above)."
    result = {row["line"]: row for row in json_lines(out)}
    assert sorted(result) == list(range(2, 14))
    assert result[2]["status"] == result[13]["status"] == "issued"
    reasons = {line: row.get("reason", "") for line, row in result.items()}
    assert reasons[3].startswith("national_number: ") and "check digits do not match" in reasons[3]
    assert "11 digits" in reasons[4]
    assert reasons[5] == "email: Enter a valid email address."
    assert reasons[6].startswith("Els Maes already has an open activation (id ")
    assert reasons[6].endswith(" by gent)")
    assert reasons[7].startswith("phone: ") and "not a mobile number" in reasons[7]
    assert reasons[8].startswith("language: Select a valid choice.")
    assert reasons[9] == "first_name: This field is required."
    assert reasons[10] == "7 fields where the header has 8"
    assert reasons[11].startswith("Marie Dubois already has an open activation")
    assert "age of 12" in reasons[12]
    assert Activation.objects.filter(office=office).count() == 2
    assert Citizen.objects.count() == 3  # Marie, Karl and the known Els only
    # the known person's activation was left alone, and no mail went to the refused rows
    assert known.activations.get().state == Activation.State.ISSUED
    assert len(mail.outbox) == 2


def test_a_second_run_issues_nothing_twice(office, tmp_path):
    path = write(tmp_path, GOOD)
    _, _, error = bulk(path, json=True)
    assert error is None
    mail.outbox.clear()
    second, err, error = bulk(path, json=True)
    assert str(error) == "3 rows not issued (see the reasons above)."
    rows = json_lines(second)
    assert [row["status"] for row in rows] == ["refused"] * 3
    assert all("already has an open activation" in row["reason"] for row in rows)
    assert not any("activation_code" in row for row in rows)
    assert Activation.objects.count() == 3
    assert Activation.objects.filter(state=Activation.State.ISSUED).count() == 3
    assert not mail.outbox
    assert "3 rows: 0 issued, 3 not issued." in err


def test_plain_lines_for_bad_rows_when_not_a_terminal(office, tmp_path):
    bad = f"Piet,Mail,{number('700101001')},piet@,,nl,id_card,1"
    out, _, error = bulk(write(tmp_path, [bad, MARIE]), letters=str(tmp_path / "l.html"))
    assert error is not None
    lines = out.splitlines()
    assert lines[0] == "line 2: NOT issued: email: Enter a valid email address."
    assert lines[1].startswith("line 3: issued activation ")
    assert lines[2] == "2 rows: 1 issued, 1 not issued."
    assert "\x1b[" not in out  # no terminal control codes


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal(office, tmp_path):
    bad = f"Piet,Mail,{number('700101001')},piet@,,nl,id_card,1"
    out, _, error = bulk(
        write(tmp_path, [MARIE, bad, KARL]), letters=str(tmp_path / "l.html"), stdout=Terminal()
    )
    assert error is not None
    assert "Issuing" in out and "3/3" in out  # rich's progress bar
    assert "line 3: NOT issued: email: Enter a valid email address." in out
    assert "line 2: issued" not in out  # the bar counts the good rows
    assert "3 rows: 2 issued, 1 not issued." in out


def test_the_codes_must_go_somewhere(office, tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(CommandError, match="--letters FILE"):
        call_command("issue_activation", csv=path, office="leuven")
    letters = tmp_path / "letters.html"
    letters.write_text("codes of an earlier run")
    _, _, error = bulk(path, letters=str(letters))
    assert "exists already" in str(error)
    assert letters.read_text() == "codes of an earlier run"
    with pytest.raises(CommandError, match="do not give --first-name"):
        call_command("issue_activation", csv=path, office="leuven", json=True, first_name="X")
    with pytest.raises(CommandError, match="do not give --reissue"):
        call_command("issue_activation", csv=path, office="leuven", json=True, reissue=True)
    assert not Activation.objects.exists()


def test_wrong_header_issues_nothing(office, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("first_name,last_name,national_number,email\nMarie,Dubois,90010112395,m@x.be\n")
    _, _, error = bulk(str(path), json=True)
    assert "line 1: the header must be" in str(error)
    assert "missing column phone, language, document_type, document_number" in str(error)
    assert not Activation.objects.exists()


def test_office_must_be_named_when_there_are_several(office, other_office, tmp_path):
    with pytest.raises(CommandError, match="--office"):
        call_command("issue_activation", csv=write(tmp_path, GOOD), json=True, office="")
    _, _, error = bulk(write(tmp_path, GOOD), json=True, office="gent")
    assert error is None
    assert {a.office for a in Activation.objects.all()} == {other_office}


def test_email_failure_is_reported_and_the_activation_kept(office, tmp_path):
    with override_settings(MAILERS=FAILING_MAILERS):
        out, err, error = bulk(write(tmp_path, [MARIE]), json=True)
    assert error is None
    (row,) = json_lines(out)
    assert row["status"] == "issued" and row["email_sent"] is False
    assert Activation.objects.get().email_status == Activation.EmailStatus.FAILED
    assert "1 activation e-mail(s) could not be sent yet" in err


def test_a_known_person_without_open_activation_gets_a_new_one(office, other_office, tmp_path):
    """Served where they come: a citizen of Gent whose activation was revoked is issued a new
    one by Leuven; their record moves to Leuven, the audit names both offices."""
    _, _, error = bulk(write(tmp_path, [MARIE]), json=True, office="gent")
    assert error is None
    issuance.revoke_activation(Activation.objects.get(), by=None)
    out, _, error = bulk(write(tmp_path, [MARIE], name="again.csv"), json=True)
    assert error is None
    (row,) = json_lines(out)
    activation = Activation.objects.get(pk=row["id"])
    assert activation.office == office
    assert activation.citizen.office == office
    assert Citizen.objects.count() == 1
    issued = AuditEvent.objects.get(
        action=AuditEvent.Action.ACTIVATION_ISSUED, activation=activation
    )
    assert issued.detail["office"] == "leuven"
    assert issued.detail["previous_office"] == "gent"


class RecordingBackend:
    """Records whether a transaction was open when each e-mail went out."""

    in_transaction: list[bool] = []

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        from django.db import connection

        RecordingBackend.in_transaction.append(connection.in_atomic_block)
        mail.outbox.extend(messages)
        return len(messages)


@pytest.mark.django_db(transaction=True)
def test_each_row_in_its_own_transaction_and_the_mail_after_it(office, tmp_path):
    RecordingBackend.in_transaction = []
    recording = {"default": {"BACKEND": "tests.test_bulk_issuance.RecordingBackend"}}
    with override_settings(MAILERS=recording):
        _, _, error = bulk(write(tmp_path, GOOD), json=True)
    assert error is None
    assert RecordingBackend.in_transaction == [False, False, False]
    assert Activation.objects.count() == 3
