"""Helpers for testing code that uses crmkit: hypothesis strategies for every record and value.

Importing ``crmkit.testing`` needs ``hypothesis`` (``pip install hypothesis``);
the rest of crmkit does not. Example::

    from hypothesis import given
    from crmkit.serialization import from_data, to_data
    from crmkit.testing import entities

    @given(entities())
    def test_my_store_keeps_every_field(record): ...
"""

from crmkit.testing.strategies import (
    accounts,
    activities,
    addresses,
    aware_datetimes,
    campaigns,
    consents,
    contacts,
    currencies,
    custom_fields,
    domains,
    emails,
    entities,
    entity_refs,
    feedback,
    ids,
    leads,
    line_items,
    money,
    opportunities,
    orders,
    person_names,
    phone_numbers,
    products,
    quotes,
    stage_changes,
    tasks,
    teams,
    tickets,
    users,
    working_hours,
)

__all__ = [
    "accounts",
    "activities",
    "addresses",
    "aware_datetimes",
    "campaigns",
    "consents",
    "contacts",
    "currencies",
    "custom_fields",
    "domains",
    "emails",
    "entities",
    "entity_refs",
    "feedback",
    "ids",
    "leads",
    "line_items",
    "money",
    "opportunities",
    "orders",
    "person_names",
    "phone_numbers",
    "products",
    "quotes",
    "stage_changes",
    "tasks",
    "teams",
    "tickets",
    "users",
    "working_hours",
]
