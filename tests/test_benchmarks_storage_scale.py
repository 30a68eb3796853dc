"""The storage scale report runs end to end at a tiny size (its figures are reports, not tests)."""

import pytest
from benchmarks.storage_scale import run


@pytest.fixture(scope="module")
def report():
    return run(1_500, lookups=20)


def test_lookups_by_email_use_the_email_index(report):
    assert any("USING INDEX crm_contact__email" in step for step in report["email_lookup"]["plan"])


def test_an_index_added_later_is_used_by_the_same_query(report):
    assert not any("crm_contact__created_at" in step for step in report["unindexed_query"]["plan"])
    assert any("crm_contact__created_at" in step for step in report["after_add_index"]["plan"])


def test_streaming_yields_the_same_rows_as_reading_them_all(report):
    stream = report["stream"]
    assert stream["same_rows"]
    assert 0 < stream["rows"] < report["contacts"]


def test_the_postgres_report_shows_the_plan_of_the_real_query(postgres_schema_url):
    report = run(300, postgres_schema_url, lookups=5)
    assert any("crm_contact__email" in step for step in report["email_lookup"]["plan"])
    assert report["stream"]["same_rows"]
