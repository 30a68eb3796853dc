import pickle

import pytest

from crmkit import errors
from crmkit.entities import EntityRef
from crmkit.errors import (
    ConflictError,
    ConsentError,
    CrmError,
    CurrencyMismatch,
    NotFound,
    Problem,
    RuleError,
    StorageError,
    TransitionError,
    ValidationError,
)


@pytest.mark.parametrize(
    "error",
    [
        ValidationError,
        TransitionError,
        NotFound,
        ConflictError,
        RuleError,
        StorageError,
        ConsentError,
        CurrencyMismatch,
    ],
)
def test_every_error_derives_from_the_one_root(error):
    assert issubclass(error, CrmError)


def test_errors_also_derive_from_the_fitting_builtin():
    assert issubclass(ValidationError, ValueError)
    assert issubclass(RuleError, ValueError)
    assert issubclass(NotFound, LookupError)
    assert issubclass(CurrencyMismatch, ValidationError)


def test_the_tree_in_the_module_docstring_names_every_error_class():
    classes = {
        name for name in errors.__all__ if isinstance(getattr(errors, name), type) and name != "Problem"
    }
    assert all(f" {name}" in errors.__doc__ for name in classes)


def test_validation_error_reports_every_problem_with_its_path():
    error = ValidationError([Problem("email", "not an email"), Problem("lines[1].quantity", "negative")])
    assert error.paths == ("email", "lines[1].quantity")
    assert str(error) == "2 problems:\n  - email: not an email\n  - lines[1].quantity: negative"
    assert str(ValidationError.single("", "bad")) == "bad"


def test_problems_nest_under_their_container():
    assert Problem("quantity", "negative").under(1).under("lines") == Problem("lines[1].quantity", "negative")
    assert Problem("", "bad").under("email") == Problem("email", "bad")
    assert Problem("[0]", "bad").under("tags") == Problem("tags[0]", "bad")
    assert ValidationError.single("city", "empty").under("address").paths == ("address.city",)


def test_a_validation_error_needs_a_problem():
    with pytest.raises(ValueError, match="at least one problem"):
        ValidationError([])


def test_rule_error_points_at_the_node():
    error = RuleError("unknown field", "field").under("any[0]").under("all[1]")
    assert error.path == "all[1].any[0].field"
    assert str(error) == "all[1].any[0].field: unknown field"
    assert RuleError("bad").under("[2]").path == "[2]"


@pytest.mark.parametrize(
    "error",
    [
        ValidationError([Problem("a", "b"), Problem("c", "d")]),
        CurrencyMismatch([Problem("currency", "EUR vs USD")]),
        TransitionError("qualify", ["guard failed: employees ge 10"]),
        TransitionError(
            "lose",
            ["required field 'lost_reason' is missing"],
            entity=EntityRef("opportunity", "o-1"),
            stage="proposal",
        ),
        NotFound("lead", "l-1"),
        RuleError("unknown field", "all[0].field"),
        ConflictError("stale version 3"),
    ],
)
def test_errors_survive_pickling_with_their_data(error):
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own data
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_structured_errors_carry_their_data():
    missing = NotFound("lead", "l-1")
    assert (missing.kind, missing.id, str(missing)) == ("lead", "l-1", "no lead with id 'l-1'")
    refused = TransitionError("lose", ["lost_reason is required"])
    assert refused.transition == "lose"
    assert refused.reasons == ("lost_reason is required",)
    assert (refused.entity, refused.stage) == (None, None)
    named = TransitionError("lose", ["no reason"], entity=EntityRef("opportunity", "o-1"), stage="proposal")
    assert named.entity == EntityRef("opportunity", "o-1")
    assert named.stage == "proposal"
    assert str(named) == "opportunity o-1: transition 'lose' refused in stage 'proposal': no reason"
