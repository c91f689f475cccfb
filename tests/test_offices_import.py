"""manage.py import_offices: registration offices from a CSV file, all or nothing."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from keys.models import RegistrationOffice

GOOD = (
    "code,name,address\n"
    'leuven,Stad Leuven – Burgerzaken,"Professor Van Overstraetenplein 1, 3000 Leuven"\n'
    'liege,Ville de Liège,"Place du Marché 2, 4000 Liège"\n'
    "eupen,Stadt Eupen,\n"
)


def write(tmp_path, text: str, *, encoding: str = "utf-8", name: str = "offices.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def run(path: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_offices", path, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def offices() -> dict[str, tuple[str, str]]:
    return {o.code: (o.name, o.address) for o in RegistrationOffice.objects.all()}


def test_creates_offices(db, tmp_path):
    out, _ = run(write(tmp_path, GOOD))
    assert out.strip() == "3 offices created, 0 updated, 0 unchanged."
    assert offices() == {
        "leuven": ("Stad Leuven – Burgerzaken", "Professor Van Overstraetenplein 1, 3000 Leuven"),
        "liege": ("Ville de Liège", "Place du Marché 2, 4000 Liège"),
        "eupen": ("Stadt Eupen", ""),
    }


def test_updates_by_code_and_counts_unchanged(db, tmp_path):
    RegistrationOffice.objects.create(code="leuven", name="Leuven (old name)", address="")
    RegistrationOffice.objects.create(code="eupen", name="Stadt Eupen", address="")
    RegistrationOffice.objects.create(code="gent", name="Stad Gent")
    out, _ = run(write(tmp_path, GOOD))
    assert out.strip() == "1 office created, 1 updated, 1 unchanged."
    assert offices()["leuven"][0] == "Stad Leuven – Burgerzaken"
    # an office the file does not name is left alone
    assert offices()["gent"] == ("Stad Gent", "")
    assert RegistrationOffice.objects.count() == 4


def test_byte_order_mark_and_windows_line_ends(db, tmp_path):
    path = write(tmp_path, GOOD.replace("\n", "\r\n"), encoding="utf-8-sig")
    out, _ = run(path)
    assert out.startswith("3 offices created")
    assert offices()["liege"][0] == "Ville de Liège"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Leuven Centrum,Stad Leuven,", "code: Enter a valid “slug”"),
        (",Stad Leuven,", "code: This field cannot be blank."),
        ("leuven,,Grote Markt 1", "name: This field cannot be blank."),
        ("leuven,Stad Leuven", "2 fields where the header has 3"),
        ("leuven,Stad Leuven,Grote Markt 1,3000", "4 fields where the header has 3"),
        ("leuven," + "x" * 201 + ",", "name: Ensure this value has at most 200 characters"),
    ],
)
def test_each_bad_line_is_reported_and_nothing_changes(db, tmp_path, line, reason):
    RegistrationOffice.objects.create(code="eupen", name="Eupen (old name)")
    text = "code,name,address\nliege,Ville de Liège,\n\n" + line + "\neupen,Stadt Eupen,\n"
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was changed") as error:
        call_command("import_offices", write(tmp_path, text), stdout=StringIO(), stderr=err)
    assert "1 wrong line" in str(error.value)
    # the blank line 3 counts: the bad line is line 4, as an editor shows it
    assert err.getvalue().startswith(f"line 4: {reason}"), err.getvalue()
    assert offices() == {"eupen": ("Eupen (old name)", "")}


def test_every_bad_line_is_listed_with_its_number(db, tmp_path):
    text = (
        "code,name,address\n"
        'leuven,Stad Leuven,"Grote Markt 9,\n3000 Leuven"\n'  # a quoted address on two lines
        "Bad Code,Nowhere,\n"
        "liege,Ville de Liège,\n"
        "leuven,Leuven again,\n"
    )
    err = StringIO()
    with pytest.raises(CommandError, match="2 wrong lines"):
        call_command("import_offices", write(tmp_path, text), stdout=StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("line 4: code:")
    assert lines[1] == "line 6: code 'leuven' is already on line 2"
    assert len(lines) == 2
    assert not RegistrationOffice.objects.exists()


def test_header_must_name_the_columns(db, tmp_path):
    with pytest.raises(CommandError, match=r"line 1: the header must be code,name,address"):
        run(write(tmp_path, "kode,name,address\nleuven,Stad Leuven,\n"))
    with pytest.raises(CommandError, match="missing column name"):
        run(write(tmp_path, "code,address\nleuven,Grote Markt 1\n"))
    assert not RegistrationOffice.objects.exists()


def test_address_column_may_be_left_out_and_columns_reordered(db, tmp_path):
    out, _ = run(write(tmp_path, "name,code\nStad Gent,gent\n"))
    assert out.startswith("1 office created")
    assert offices() == {"gent": ("Stad Gent", "")}


def test_not_utf8_changes_nothing(db, tmp_path):
    with pytest.raises(CommandError, match=r"not UTF-8 \(line 3\)"):
        run(write(tmp_path, GOOD.replace("–", "-"), encoding="cp1252"))
    assert not RegistrationOffice.objects.exists()


def test_empty_or_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="empty"):
        run(write(tmp_path, ""))
    with pytest.raises(CommandError, match="no office"):
        run(write(tmp_path, "code,name,address\n"))
    with pytest.raises(CommandError, match="Cannot read"):
        run(str(tmp_path / "missing.csv"))


def test_dry_run_changes_nothing(db, tmp_path):
    out = StringIO()
    call_command("import_offices", write(tmp_path, GOOD), dry_run=True, stdout=out)
    assert out.getvalue().strip() == "3 offices would be created, 0 would be updated, 0 unchanged."
    assert not RegistrationOffice.objects.exists()


def test_issue_activation_without_offices_names_the_command(db):
    with pytest.raises(CommandError) as error:
        call_command(
            "issue_activation",
            first_name="Marie",
            last_name="Dubois",
            national_number="90.01.01-123.95",
            email="marie.dubois@example.be",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert str(error.value) == (
        "There is no registration office yet. Create them first with: "
        "python manage.py import_offices FILE.csv (a UTF-8 file with the header "
        "code,name,address)."
    )
    # the same with an office code given, and in bulk
    with pytest.raises(CommandError, match=r"import_offices FILE\.csv"):
        call_command("issue_activation", csv="people.csv", office="leuven", json=True)


def test_offices_imported_then_issue_activation_works(db, tmp_path):
    run(write(tmp_path, GOOD))
    out = StringIO()
    call_command(
        "issue_activation",
        first_name="Marie",
        last_name="Dubois",
        national_number="90.01.01-123.95",
        email="marie.dubois@example.be",
        office="liege",
        stdout=out,
        stderr=StringIO(),
    )
    assert "activation code (paper):" in out.getvalue()
