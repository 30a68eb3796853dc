import csv
import importlib
import io
import json
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.cli import main
from crmkit.cli._transfer import RowMapper, UserError, export_records, external_id, import_file, parse_mapping
from crmkit.entities import Contact, Lead, Order
from crmkit.errors import ValidationError
from crmkit.serialization import from_data
from crmkit.storage import open_store
from crmkit.testing.strategies import leads


def write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def lead_rows(count=100):
    rows = []
    for i in range(count):
        row = {
            "crm_id": f"L{i}",
            "First Name": f"Name{i}",
            "E-mail": f"person{i}@example.com",
            "employees": str(i),
            "country": "DE",
            "tags": "vip; trade-fair",
        }
        if i % 20 == 3:
            row["E-mail"] = "broken@@example"  # 5 rows with a bad email
        if i % 20 == 7:
            row["employees"] = "lots"  # 5 rows with a bad number
        rows.append(row)
    return rows


MAPPING = ["--map", "first_name=First Name", "--map", "email=E-mail", "--id-column", "crm_id"]


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path}/crm.db"


def count(url, cls):
    store = open_store(url)
    try:
        with store.transaction() as tx:
            return tx[cls].count()
    finally:
        store.close()


def test_a_csv_with_ten_percent_broken_rows_stores_the_rest_and_reports_the_broken_ones(tmp_path, db, capsys):
    source = write_csv(tmp_path / "leads.csv", lead_rows(100))
    assert main(["import", "lead", str(source), *MAPPING, "--store", db]) == 0
    out = capsys.readouterr().out
    assert "read 100 rows; stored 90 leads, skipped 0 already stored, rejected 10" in out
    assert count(db, Lead) == 90
    with (tmp_path / "leads.csv.rejects.csv").open(newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert len(rejects) == 10
    by_line = {int(row["line"]): row for row in rejects}
    # The header is line 1, so row i of the data is on line i + 2.
    assert by_line[5]["field"] == "email"
    assert "broken@@example" in by_line[5]["error"]
    assert by_line[9] == {**by_line[9], "field": "employees", "error": "'lots' is not a whole number"}
    assert json.loads(by_line[9]["row"])["crm_id"] == "L7"


def test_re_running_the_same_file_stores_nothing_twice(tmp_path, db, capsys):
    source = write_csv(tmp_path / "leads.csv", lead_rows(20))
    main(["import", "lead", str(source), *MAPPING, "--store", db])
    capsys.readouterr()
    assert main(["import", "lead", str(source), *MAPPING, "--store", db]) == 0
    assert "stored 0 leads, skipped 18 already stored, rejected 2" in capsys.readouterr().out
    assert count(db, Lead) == 18


def test_the_external_id_gives_a_stable_record_id_and_is_kept_as_a_custom_field(tmp_path, db):
    source = write_csv(tmp_path / "leads.csv", lead_rows(1))
    main(["import", "lead", str(source), *MAPPING, "--store", db])
    store = open_store(db)
    with store.transaction() as tx:
        lead = tx[Lead].get(external_id("lead", "L0"))
    store.close()
    assert lead.custom_fields == {"external_id": "L0"}
    assert lead.first_name == "Name0"
    assert lead.tags == frozenset({"vip", "trade-fair"})


def test_rows_without_an_external_id_are_matched_by_email_and_phone(tmp_path, db, capsys):
    source = tmp_path / "contacts.jsonl"
    source.write_text(
        '{"email": "ada@example.com", "first_name": "Ada"}\n'
        '{"email": "ADA@example.com "}\n'  # the same email once normalised
        "\n"
        "not json\n"
        '{"phone": "+44 20 7946 0958"}\n'
        '["a list"]\n',
        encoding="utf-8",
    )
    assert main(["import", "contact", str(source), "--store", db]) == 0
    assert "read 5 rows; stored 2 contacts, skipped 1 already stored, rejected 2" in capsys.readouterr().out
    main(["import", "contact", str(source), "--store", db])
    assert "stored 0 contacts, skipped 3 already stored" in capsys.readouterr().out
    rejects = (tmp_path / "contacts.jsonl.rejects.csv").read_text(encoding="utf-8")
    assert "4,,not JSON" in rejects
    assert "6,,a JSON line holds one object" in rejects


def test_orders_read_flat_columns_into_one_line_and_are_keyed_by_their_number(tmp_path, db, capsys):
    source = tmp_path / "orders.csv"
    source.write_text(
        "number,customer,ordered_at,currency,amount,status\n"
        "A-1,C1,2026-01-05T10:00:00+00:00,EUR,120.00,paid\n"
        "A-2,C1,2026-02-05T10:00:00,EUR,80.50,paid\n"
        "A-3,C2,2026-03-09T10:00:00+00:00,EUR,99,shipped\n",
        encoding="utf-8",
    )
    args = ["import", "order", str(source), "--map", "contact_external_id=customer", "--store", db]
    assert main(args) == 0
    assert "stored 1 orders, skipped 0 already stored, rejected 2" in capsys.readouterr().out
    store = open_store(db)
    with store.transaction() as tx:
        order = tx[Order].get(external_id("order", "A-1"))
    store.close()
    assert order.contact_id == external_id("contact", "C1")
    assert str(order.total.amount) == "120.00"
    assert order.currency == "EUR"
    rejects = (tmp_path / "orders.csv.rejects.csv").read_text(encoding="utf-8")
    assert "3,ordered_at,'2026-02-05T10:00:00' has no UTC offset" in rejects
    assert "4,status,\"'shipped' is not one of" in rejects
    main(args)
    assert "stored 0 orders, skipped 1 already stored" in capsys.readouterr().out


def test_a_mapping_file_and_map_options_combine(tmp_path):
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"email": "Mail", "first_name": "Given"}', encoding="utf-8")
    assert parse_mapping(["first_name=First"], mapping) == {"email": "Mail", "first_name": "First"}


def test_columns_that_name_no_field_are_reported_as_ignored(tmp_path, db, capsys):
    source = write_csv(tmp_path / "leads.csv", [{"email": "a@example.com", "favourite_colour": "teal"}])
    assert main(["import", "lead", str(source), "--store", db]) == 0
    assert "ignored columns (no such field; map them with --map FIELD=COLUMN): favourite_colour" in (
        capsys.readouterr().out
    )


def test_nested_and_custom_columns_fill_the_address_and_custom_fields():
    mapper = RowMapper("contact", {"address.city": "Town", "custom.plan": "Plan"})
    data, ext = mapper.data({"Town": "Berlin", "Plan": "gold", "do_not_contact": "yes", "external_id": "X1"})
    assert ext == "X1"
    contact = from_data(Contact, data)
    assert contact.do_not_contact is True
    assert contact.address is not None
    assert contact.address.city == "Berlin"
    assert data["custom_fields"] == {"plan": "gold", "external_id": "X1"}


def test_a_row_with_more_cells_than_the_header_is_rejected(tmp_path, db, capsys):
    source = tmp_path / "leads.csv"
    source.write_text("email\na@example.com,extra\nb@example.com\n", encoding="utf-8")
    main(["import", "lead", str(source), "--store", db])
    assert "stored 1 leads, skipped 0 already stored, rejected 1" in capsys.readouterr().out
    assert "1 more cells than the header has columns" in (tmp_path / "leads.csv.rejects.csv").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "lead", "missing.csv"], "crmkit import: no such file: missing.csv"),
        (
            ["import", "lead", "{file}", "--map", "email"],
            "crmkit import: --map takes field=column, got 'email'",
        ),
        (["import", "lead", "{file}", "--mapping", "{file}"], "crmkit import: the mapping"),
        (
            ["import", "lead", "{file}", "--store", "ftp://x"],
            "crmkit import: no storage adapter for the scheme",
        ),
        (["export", "lead", "--where", "{oops"], "crmkit export: --where is not JSON"),
        (["export", "gizmo"], "crmkit export: cannot export 'gizmo'"),
        (["export", "lead", "--where", '{"field": "shoe_size", "op": "eq", "value": 1}'], "crmkit export: "),
    ],
)
def test_user_errors_exit_with_1_and_one_line_without_a_traceback(
    tmp_path, capsys, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMKIT_STORE", f"sqlite:///{tmp_path}/crm.db")
    source = write_csv(tmp_path / "leads.csv", [{"email": "a@example.com"}])
    argv = [arg.replace("{file}", str(source)) for arg in args]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_usage_errors_exit_with_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["import", "gizmo", "x.csv"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main(["export"])
    assert caught.value.code == 2
    capsys.readouterr()


def test_export_writes_csv_json_and_json_lines(tmp_path, db, capsys):
    source = write_csv(tmp_path / "leads.csv", lead_rows(10))
    main(["import", "lead", str(source), *MAPPING, "--store", db])
    capsys.readouterr()
    assert main(["export", "lead", "--format", "json", "--store", db]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 8
    assert {r["country"] for r in records} == {"DE"}
    assert (
        main(
            [
                "export",
                "lead",
                "--format",
                "jsonl",
                "--store",
                db,
                "--where",
                '{"field": "employees", "op": "lt", "value": 3}',
            ]
        )
        == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 3
    target = tmp_path / "out.csv"
    assert main(["export", "lead", "--output", str(target), "--store", db]) == 0
    assert "wrote 8 lead records" in capsys.readouterr().err
    header = target.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:4] == ["id", "created_at", "updated_at", "version"]
    assert "custom.external_id" in header


def test_an_exported_csv_imports_into_another_store_and_again_without_duplicates(tmp_path, db, capsys):
    source = write_csv(tmp_path / "leads.csv", lead_rows(10))
    main(["import", "lead", str(source), *MAPPING, "--store", db])
    target = tmp_path / "out.csv"
    main(["export", "lead", "--output", str(target), "--store", db])
    other = f"sqlite:///{tmp_path}/other.db"
    for _ in range(2):
        main(["import", "lead", str(target), "--store", other])
    assert "stored 0 leads, skipped 8 already stored, rejected 0" in capsys.readouterr().out.splitlines()[-1]
    assert count(other, Lead) == 8


def test_an_unknown_kind_is_a_user_error():
    with pytest.raises(UserError, match="cannot import 'ticket'"):
        RowMapper("ticket", {})


def test_a_bad_boolean_names_the_field():
    with pytest.raises(ValidationError, match="do_not_contact: 'perhaps' is not true or false"):
        RowMapper("contact", {}).data({"do_not_contact": "perhaps"})


def _plain(lead):
    return attrs.evolve(lead, custom_fields={}, version=0)


def _roundtrip(records, file_format):
    source = open_store("memory://")
    with source.transaction() as tx:
        tx[Lead].bulk_add(records, strict=True)
        tx.commit()
    buffer = io.StringIO()
    export_records(source, "lead", buffer, file_format=file_format)
    return buffer.getvalue()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(leads().map(_plain), max_size=4, unique_by=lambda lead: lead.id))
def test_export_then_import_keeps_every_field(tmp_path, records):
    for file_format, suffix in (("csv", "csv"), ("jsonl", "jsonl")):
        path = tmp_path / f"leads.{suffix}"
        path.write_text(
            _roundtrip(records, file_format if file_format == "csv" else "jsonl"), encoding="utf-8"
        )
        target = open_store("memory://")
        summary = import_file(target, "lead", path, file_format=file_format)
        assert summary.rejected == ()
        assert summary.stored == len(records)
        with target.transaction() as tx:
            back = {lead.id: lead for lead in tx[Lead].stream()}
        for record in records:
            assert attrs.evolve(back[record.id], version=0, updated_at=record.updated_at) == record


def test_the_import_benchmark_contenders_give_the_same_answers(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    case = importlib.import_module("benchmarks.cli")
    lines = case.make_lines(300)
    answers = case._crmkit(lines)()
    assert answers == case._pandas(lines)()
    assert any(answer.startswith("rejected: email") for answer in answers)
    assert any(answer.startswith("rejected: employees") for answer in answers)
    assert "person.0@example0.com" in answers


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"email\n\xff\xfeada@example.com\n", "is not UTF-8 text"),
        (b'email\n"' + b"a" * 200_000 + b'"\n', "is not a readable CSV file"),
        (b"", "is empty: a CSV file starts with a header line"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_user_error_and_stores_nothing(
    tmp_path, db, capsys, content, message
):
    source = tmp_path / "leads.csv"
    source.write_bytes(b"email\nfirst@example.com\n" + content[len(b"email\n") :] if content else b"")
    assert main(["import", "lead", str(source), "--store", db]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert count(db, Lead) == 0


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["contact", "lead", "order"]),
    row=st.dictionaries(
        st.sampled_from(
            [
                "email",
                "employees",
                "tags",
                "do_not_contact",
                "address.city",
                "custom.x",
                "amount",
                "currency",
                "ordered_at",
                "number",
                "external_id",
                "custom_fields",
                "lines",
                "junk",
                "",
            ]
        ),
        st.one_of(_TEXT, st.integers(), st.none(), st.lists(_TEXT, max_size=2)),
    ),
)
def test_any_row_is_mapped_or_refused_with_a_validation_error(kind, row):
    cls = {"contact": Contact, "lead": Lead, "order": Order}[kind]
    try:
        data, _ = RowMapper(kind, {}).data(row)
        from_data(cls, data)
    except ValidationError as error:
        problems = error.problems
    else:
        problems = None
    assert problems is None or len(problems) > 0  # refused with at least one problem naming a path
