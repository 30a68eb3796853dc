"""Fixtures shared by test modules: a PostgreSQL database to test against, when one is configured."""

import os
import uuid
from urllib.parse import quote

import pytest

#: The variable naming the test server; ``bash .ci/postgres.sh start`` prints a URL for it.
POSTGRES_URL_VARIABLE = "CRMKIT_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of the PostgreSQL test database; the tests are skipped without one, except in CI."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        reason = (
            f"{POSTGRES_URL_VARIABLE} is not set; start a server with "
            f'`export {POSTGRES_URL_VARIABLE}="$(bash .ci/postgres.sh start)"`'
        )
        if os.environ.get("CI") or os.environ.get("CRMKIT_REQUIRE_POSTGRES"):
            pytest.fail(f"CI must test PostgreSQL: {reason}")
        pytest.skip(reason)
    pytest.importorskip("psycopg", reason="the PostgreSQL tests need the postgres extra")
    return url


@pytest.fixture
def postgres_schema_url(postgres_url):
    """A URL whose connections work in a fresh, empty schema of their own (dropped afterwards)."""
    import psycopg  # noqa: PLC0415 - only when PostgreSQL is tested

    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{separator}options={quote(f'-c search_path={schema}', safe='')}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
