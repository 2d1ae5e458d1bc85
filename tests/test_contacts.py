"""The contact directory: `cxdesk contact import` and `contact list`, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cxdesk.store.models import Contact
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.loop_helpers import write_csv

pytestmark = pytest.mark.usefixtures("first_admin")  # contact import and list need proof


def contacts(engine: Engine) -> dict[str, Contact]:
    with Session(engine) as session:
        rows = session.exec(select(Contact).order_by(col(Contact.email))).all()
        return {row.email: row for row in rows}


MIXED = """\
name,email,phone,plan,renewal
Ada Lovelace,Ada@Example.com,1-415-555-2671,enterprise,2027-03-01
Bad Email,not-an-email,,free,2027-01-01
,nameless@example.com,,free,
"Grace ""Amazing"" Hopper",grace@example.com,,"team
plan",2026-12-15
Phone Wrong,phone@example.com,12345,free,
Ada Again,ada@example.com,,pro,
Too,many,values,here,x,y

Linus T,linus@example.com,+358 40 1234567,,2026-12-31
"""


def test_import_keeps_good_rows_and_reports_each_bad_one_by_line(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    file = tmp_path / "contacts.csv"
    file.write_text(MIXED, encoding="utf-8")

    result = cli("contact", "import", str(file))

    assert result.exit_code == 1, str(result)  # some rows refused: scripts must notice
    assert "Traceback" not in result.output
    assert "3 contacts imported" in result.stdout
    assert "5 rows refused" in result.stdout
    refused = [line.strip() for line in result.error_lines]
    assert len(refused) == 5, str(result)
    # Line numbers are the file's lines: the quoted field spans lines 5-6, line 10 is blank.
    assert refused[0].startswith("line 3: email 'not-an-email' is not valid")
    assert refused[1] == "line 4: name is required"
    assert refused[2].startswith("line 7: phone '12345': not a")
    assert refused[3] == "line 8: email ada@example.com is already on line 2"
    assert refused[4] == "line 9: has 6 values but the header names 5"

    stored = contacts(engine)
    assert sorted(stored) == ["ada@example.com", "grace@example.com", "linus@example.com"]
    ada = stored["ada@example.com"]
    assert (ada.name, ada.phone) == ("Ada Lovelace", "+14155552671")
    assert ada.attributes == {"plan": "enterprise", "renewal": "2027-03-01"}
    assert stored["grace@example.com"].name == 'Grace "Amazing" Hopper'
    assert stored["grace@example.com"].attributes["plan"] == "team\nplan"
    assert stored["linus@example.com"].phone == "+358401234567"
    assert stored["linus@example.com"].attributes == {"renewal": "2026-12-31"}  # empty left out


def test_import_again_updates_known_emails_and_merges_attributes(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    first = write_csv(
        tmp_path / "a.csv",
        ["name", "email", "plan", "region"],
        [["Ada", "ada@example.com", "free", "EMEA"]],
    )
    assert cli("contact", "import", str(first)).exit_code == 0
    second = write_csv(
        tmp_path / "b.csv",
        ["Email", "Name", "Plan", "seats"],  # any column order, header case ignored for fields
        [["ADA@example.com", "Ada Lovelace", "enterprise", "40"], ["bo@example.com", "Bo", "", ""]],
    )

    result = cli("contact", "import", str(second))

    assert result.exit_code == 0, str(result)
    assert "1 contact imported, 1 updated, 0 rows refused" in result.stdout
    stored = contacts(engine)
    assert stored["ada@example.com"].name == "Ada Lovelace"
    assert stored["ada@example.com"].attributes == {  # names are lower-case: "Plan" is "plan"
        "plan": "enterprise",
        "region": "EMEA",
        "seats": "40",
    }
    assert len(stored) == 2


def test_list_filters_by_attribute_and_prints_json(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    file = write_csv(
        tmp_path / "c.csv",
        ["name", "email", "plan", "renewal"],
        [
            ["Ada", "ada@example.com", "Enterprise", "2027-03-01"],
            ["Bo", "bo@example.com", "enterprise", "2026-12-01"],
            ["Cy", "cy@example.com", "free", "2026-11-30"],
            ["Di", "di@example.com", "", ""],
        ],
    )
    assert cli("contact", "import", str(file)).exit_code == 0

    def emails(*filters: str) -> list[str]:
        args = [arg for flt in filters for arg in ("--filter", flt)]
        result = cli("contact", "list", *args, "--json")
        assert result.exit_code == 0, str(result)
        return [c["email"] for c in json.loads(result.stdout)]

    assert emails() == ["ada@example.com", "bo@example.com", "cy@example.com", "di@example.com"]
    assert emails("plan=enterprise") == ["ada@example.com", "bo@example.com"]  # case ignored
    assert emails("PLAN=Enterprise") == ["ada@example.com", "bo@example.com"]
    assert emails("plan=enterprise", "renewal<2027-01-01") == ["bo@example.com"]
    assert emails("renewal>=2026-12-01") == ["ada@example.com", "bo@example.com"]
    assert emails("plan!=free") == ["ada@example.com", "bo@example.com", "di@example.com"]
    assert emails("plan=") == ["di@example.com"]
    assert emails("email=cy@example.com") == ["cy@example.com"]
    assert emails("nosuch=x") == []
    record = json.loads(cli("contact", "list", "--filter", "name=ada", "--json").stdout)[0]
    assert record["attributes"] == {"plan": "Enterprise", "renewal": "2027-03-01"}

    table = cli("contact", "list", "--filter", "plan=enterprise", "--limit", "1")
    assert table.exit_code == 0, str(table)
    assert "Contacts (2 matching, first 1)" in table.stdout
    assert "ada@example.com" in table.stdout and "bo@example.com" not in table.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["contact", "list", "--filter", "plan"], "--filter takes ATTR=VALUE"),
        (["contact", "list", "--filter", "=x"], "needs an attribute name"),
        (["contact", "import", "missing.csv"], "No such file"),
    ],
)
def test_mistakes_are_one_line(cli: Cli, args: list[str], fragment: str) -> None:
    assert_one_error_line(cli(*args), fragment)


def test_a_file_without_email_column_or_not_utf8_changes_nothing(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    before = table_counts(engine)
    no_email = write_csv(tmp_path / "x.csv", ["name", "phone"], [["Ada", "1-415-555-2671"]])
    assert_one_error_line(cli("contact", "import", str(no_email)), "needs an 'email' column")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("name,email\nZoë,zoe@example.com\n".encode("latin-1"))
    assert_one_error_line(cli("contact", "import", str(latin1)), "is not UTF-8")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n", encoding="utf-8")
    assert_one_error_line(cli("contact", "import", str(empty)), "is empty")
    twice = write_csv(tmp_path / "twice.csv", ["name", "email", "Email"], [["A", "a@x.io", "b"]])
    assert_one_error_line(cli("contact", "import", str(twice)), "appears twice")
    assert table_counts(engine) == before


def test_the_import_summary_and_its_refusals_speak_the_users_language(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "contacts.csv"
    file.write_text(MIXED, encoding="utf-8")
    monkeypatch.setenv("LANGUAGE", "fr")

    result = cli("contact", "import", str(file))

    assert result.exit_code == 1, str(result)
    assert "3 contacts importés" in result.stdout and "5 lignes refusées" in result.stdout
    assert result.error_lines[0].strip().startswith("ligne 3 : "), str(result)
    assert "ligne 9 : a 6 valeurs mais l'en-tête nomme 5 colonnes" in result.stderr, str(result)
