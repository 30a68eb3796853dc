"""The public API is a tested contract: what ``__all__`` says, the docs say, and every name is documented."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

import crmkit

ROOT = Path(__file__).parent.parent
PUBLIC_MODULES = [
    "crmkit",
    "crmkit.access",
    "crmkit.clock",
    "crmkit.conditions",
    "crmkit.entities",
    "crmkit.errors",
    "crmkit.events",
    "crmkit.leads",
    "crmkit.lifecycle",
    "crmkit.metrics",
    "crmkit.money",
    "crmkit.sales",
    "crmkit.normalize",
    "crmkit.privacy",
    "crmkit.reports",
    "crmkit.segmentation",
    "crmkit.serialization",
    "crmkit.storage",
    "crmkit.storage.testing",
    "crmkit.testing",
    "crmkit.testing.strategies",
    "crmkit.workflows",
]


def documented_names():
    page = (ROOT / "docs" / "reference" / "crmkit.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `([^`]+)` \|", page, flags=re.MULTILINE)


def test_crmkit_all_is_exactly_the_documented_public_api():
    documented = documented_names()
    assert len(documented) == len(set(documented)), "a name is documented twice"
    assert sorted(crmkit.__all__) == sorted(documented)
    assert len(crmkit.__all__) == len(set(crmkit.__all__))


def test_top_level_names_are_the_objects_of_their_home_module():
    for name in crmkit.__all__:
        obj = getattr(crmkit, name)
        home = getattr(obj, "__module__", None)
        if home and home.startswith("crmkit.") and (inspect.isclass(obj) or inspect.isfunction(obj)):
            assert getattr(importlib.import_module(home), name) is obj, name


def test_version_has_one_source():
    from crmkit._version import __version__  # noqa: PLC0415 - the point of the test

    assert crmkit.__version__ == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[.-]?\w+)?", __version__)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_exists_and_has_a_docstring(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    names = module.__all__
    assert len(names) == len(set(names))
    for name in names:
        obj = getattr(module, name)  # raises if __all__ names something missing
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"
            if inspect.isclass(obj):
                for member_name, member in vars(obj).items():
                    # The conformance suite's tests are named as sentences; a docstring would repeat them.
                    if member_name.startswith("test_"):
                        continue
                    if not member_name.startswith("_") and inspect.isfunction(member):
                        assert inspect.getdoc(member), f"{module_name}.{name}.{member_name} has no docstring"


def test_every_public_module_has_a_reference_page():
    pages = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "docs" / "reference").glob("*.md"))
    for module_name in PUBLIC_MODULES:
        if module_name == "crmkit.testing":
            continue  # documented through crmkit.testing.strategies, which it re-exports
        assert f"::: {module_name}\n" in pages + "\n", module_name
