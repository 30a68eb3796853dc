"""Every ```python example in README.md and docs/ runs, so the examples cannot rot.

The blocks of one Markdown file run in order in one shared namespace (a fresh
module per file), so a later block can use what an earlier one defined. Each
block is its own test, named ``file:line`` after its opening fence. A block
whose first line starts with ``>>>`` is checked as a doctest (its output must
match); any other block must simply not raise. Put ``<!-- no-test -->`` on the
line before a fence to show a block without running it.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import re
import sys
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
NO_TEST = "<!-- no-test -->"
PYTHON_INFO = {"python", "py", "python3", "pycon"}

_OPENING = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")


def markdown_files() -> list[Path]:
    """README.md, then every Markdown page under docs/, in a stable order."""
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [path for path in [ROOT / "README.md", *docs] if path.is_file()]


@dataclass(frozen=True)
class Example:
    """One fenced code block of a Markdown file."""

    path: Path
    fence_line: int  # 1-based line of the opening fence
    source: str
    index: int  # position among the file's python blocks
    skip: bool

    @property
    def name(self) -> str:
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{where.as_posix()}:{self.fence_line}"

    @property
    def is_doctest(self) -> bool:
        return self.source.lstrip().startswith(">>>")

    def __str__(self) -> str:
        return self.name


def _language(info: str) -> str:
    # "python", "python title='x.py'", "{.python .annotate}" all name the language first.
    first = info.split(maxsplit=1)[0] if info.strip() else ""
    return first.strip("{}").lstrip(".").lower()


def parse_examples(path: Path) -> list[Example]:
    """Return the python blocks of one Markdown file.

    Raises:
        ValueError: If a fence is never closed (every later block would be misread).
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    examples: list[Example] = []
    previous = ""  # the last non-blank line outside a block
    number = 0
    while number < len(lines):
        opening = _OPENING.match(lines[number])
        if opening is None:
            if lines[number].strip():
                previous = lines[number].strip()
            number += 1
            continue
        fence = opening["fence"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body_start = number + 1
        end = body_start
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            msg = f"{path}:{number + 1}: a code fence is opened but never closed"
            raise ValueError(msg)
        if _language(opening["info"]) in PYTHON_INFO:
            source = textwrap.dedent("\n".join(lines[body_start:end])) + "\n"
            examples.append(Example(path, number + 1, source, len(examples), skip=previous == NO_TEST))
        previous = ""
        number = end + 1
    return examples


EXAMPLES_BY_FILE = {path: parse_examples(path) for path in markdown_files()}
EXAMPLES = [example for examples in EXAMPLES_BY_FILE.values() for example in examples]


@dataclass
class FileRun:
    """The shared namespace of one file's examples and how far through them it got."""

    module: types.ModuleType
    done: int = 0
    failed: list[str] = field(default_factory=list)


_RUNS: dict[Path, FileRun] = {}


def _module_name(path: Path) -> str:
    slug = re.sub(r"\W", "_", path.relative_to(ROOT).as_posix())
    return f"crmkit_docs_example_{slug}"


def _fresh_run(path: Path) -> FileRun:
    # A real module in sys.modules, so dataclasses, attrs, pickling and get_type_hints work in examples.
    module = types.ModuleType(_module_name(path))
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    run = FileRun(module)
    _RUNS[path] = run
    return run


@pytest.fixture(scope="module", autouse=True)
def _forget_example_modules() -> Iterator[None]:
    yield
    for run in _RUNS.values():
        sys.modules.pop(run.module.__name__, None)
    _RUNS.clear()


def execute(example: Example, namespace: dict[str, object]) -> None:
    """Run one block in ``namespace``; raise if it raises or, for a doctest, if its output differs."""
    if example.is_doctest:
        first_line = example.fence_line  # 0-based line of the block's first line
        test = doctest.DocTestParser().get_doctest(
            example.source, namespace, example.name, str(example.path), first_line
        )
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report: list[str] = []
        runner.run(test, out=report.append, clear_globs=False)
        if runner.failures:
            raise AssertionError("".join(report))
        return
    # Blank lines in front keep line numbers in tracebacks equal to the Markdown file's.
    code = compile("\n" * example.fence_line + example.source, str(example.path), "exec")
    exec(code, namespace)  # noqa: S102 - running our own documentation is the point of this test


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_runs(example: Example) -> None:
    if example.skip:
        pytest.skip(f"{NO_TEST} before the fence")
    run = _RUNS.get(example.path)
    if run is None or run.done > example.index:
        run = _fresh_run(example.path)  # first block of the file, or the file is being run again
    # When a block is selected alone (-k), the blocks before it run first: it may use their names.
    for earlier in EXAMPLES_BY_FILE[example.path][run.done : example.index]:
        run.done = earlier.index + 1
        if earlier.skip:
            continue
        try:
            execute(earlier, run.module.__dict__)
        except Exception as exc:  # noqa: BLE001 - reported as this test's failure below
            run.failed.append(earlier.name)
            pytest.fail(f"an earlier example of this file fails, {earlier.name}: {exc!r}")
    run.done = example.index + 1
    try:
        execute(example, run.module.__dict__)
    except Exception:
        if run.failed:
            sys.stderr.write(f"note: earlier examples of this file failed: {', '.join(run.failed)}\n")
        run.failed.append(example.name)
        raise


# -- the collector itself ------------------------------------------------------------------------


def test_readme_and_docs_have_examples_to_run() -> None:
    readme = EXAMPLES_BY_FILE.get(ROOT / "README.md", [])
    assert len([example for example in readme if not example.skip]) >= 3
    assert any(example.path.is_relative_to(ROOT / "docs") for example in EXAMPLES)


def test_blocks_are_collected_in_order_with_their_line_and_opt_out(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    text = textwrap.dedent(
        """\
        # Page

        ```python
        x = 1
        ```

        ```bash
        echo not python
        ```

        <!-- no-test -->
        ```python
        raise SystemExit
        ```

        !!! note
            ```py title="indented"
            y = x + 1
            ```

        ````pycon
        >>> y
        2
        ````
        """
    )
    page.write_text(text, encoding="utf-8")
    examples = parse_examples(page)
    assert [(e.fence_line, e.skip, e.is_doctest) for e in examples] == [
        (3, False, False),
        (12, True, False),
        (17, False, False),
        (21, False, True),
    ]
    assert examples[2].source == "y = x + 1\n"
    namespace: dict[str, object] = {}
    for example in examples:
        if not example.skip:
            execute(example, namespace)
    assert namespace["y"] == 2


def test_a_failing_doctest_block_fails() -> None:
    example = Example(ROOT / "README.md", 1, ">>> 1 + 1\n3\n", 0, skip=False)
    with pytest.raises(AssertionError, match="Expected"):
        execute(example, {})


def test_an_unclosed_fence_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="never closed"):
        parse_examples(page)


# -- the architecture page draws the real imports -------------------------------------------------

UNDRAWN = {"__init__", "__main__", "_version"}
_EDGE = re.compile(r"^\s*(?P<source>[\w.]+)\s*-->\s*(?P<target>[\w.]+)\s*$")


def _imported_modules(path: Path) -> set[str]:
    """Every module a file names in an import statement, at run time or under TYPE_CHECKING."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def actual_import_edges() -> set[tuple[str, str]]:
    """Which crmkit module or subpackage imports which other, read from the source.

    A subpackage is one node (``conditions``). The package root only re-exports,
    ``__main__`` only calls the CLI and ``_version`` holds a string, so none of
    them is drawn.
    """
    package = ROOT / "src" / "crmkit"
    units: dict[str, list[Path]] = {}
    for path in package.iterdir():
        if path.suffix == ".py" and path.stem not in UNDRAWN:
            units[path.stem] = [path]
        elif (path / "__init__.py").exists():
            units[path.name] = sorted(path.rglob("*.py"))
    edges: set[tuple[str, str]] = set()
    for unit, paths in units.items():
        for path in paths:
            for name in _imported_modules(path):
                parts = name.split(".")
                if parts[0] == "crmkit" and len(parts) > 1 and parts[1] in units and parts[1] != unit:
                    edges.add((unit, parts[1]))
    return edges


def drawn_import_edges() -> set[tuple[str, str]]:
    """The ``a --> b`` edges of the first mermaid diagram on the architecture page."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    match = re.search(r"```mermaid\n(?P<body>.*?)```", text, re.DOTALL)
    assert match is not None, "docs/architecture.md has no mermaid diagram"
    return {
        (edge["source"], edge["target"]) for line in match["body"].splitlines() if (edge := _EDGE.match(line))
    }


def test_architecture_diagram_matches_the_imports() -> None:
    actual, drawn = actual_import_edges(), drawn_import_edges()
    assert actual - drawn == set(), "imports missing from the diagram in docs/architecture.md"
    assert drawn - actual == set(), "the diagram in docs/architecture.md shows imports the code lacks"


def drawn_layers() -> list[set[str]]:
    """The nodes of each ``subgraph`` of the architecture diagram, top layer first."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    match = re.search(r"```mermaid\n(?P<body>.*?)```", text, re.DOTALL)
    assert match is not None
    layers: list[set[str]] = []
    for line in match["body"].splitlines():
        words = line.split()
        if words and words[0] == "subgraph":
            layers.append(set())
        elif words and words[0] != "end" and "-->" not in line and layers:
            layers[-1].add(re.split(r"[\[(]", words[0])[0])
    return layers


def test_no_layer_imports_a_higher_one() -> None:
    rank = {node: index for index, layer in enumerate(drawn_layers()) for node in layer}
    assert set(rank) >= {node for edge in drawn_import_edges() for node in edge}, "a node is in no layer"
    upward = {(source, target) for source, target in drawn_import_edges() if rank[target] < rank[source]}
    assert upward == set()


# -- the error tree is drawn once in errors.py and again, identically, in the docs ---------------

_TREE_LINE = re.compile(r"^(?P<indent>(?:[│ ] {3})*)(?:[├└]── )?(?P<name>[A-Z]\w+)(?: \((?P<base>\w+)\))?")


def error_tree_from_docstring() -> list[str]:
    import crmkit.errors  # noqa: PLC0415 - imported by the test that needs it

    doc = crmkit.errors.__doc__ or ""
    lines = doc.splitlines()
    start = next(index for index, line in enumerate(lines) if line.strip() == "CrmError")
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return textwrap.dedent("\n".join(lines[start:end])).splitlines()


def test_errors_page_draws_the_tree_of_the_errors_module() -> None:
    tree = error_tree_from_docstring()
    page = (ROOT / "docs" / "concepts" / "errors.md").read_text(encoding="utf-8").splitlines()
    start = page.index(tree[0])
    assert page[start : start + len(tree)] == tree
    assert page[start + len(tree)] == "```"


def test_error_tree_matches_the_classes() -> None:
    import crmkit.errors  # noqa: PLC0415 - imported by the test that needs it

    parents: list[type] = []
    for line in error_tree_from_docstring():
        match = _TREE_LINE.match(line)
        assert match is not None, line
        depth = len(match["indent"]) // 4 + (0 if line.startswith("CrmError") else 1)
        cls = getattr(crmkit.errors, match["name"])
        del parents[depth:]
        if parents:
            assert cls.__bases__[0] is parents[-1], f"{cls.__name__} is not drawn under its base"
        if match["base"]:
            assert issubclass(cls, getattr(builtins, match["base"]))
        parents.append(cls)
    names = [match["name"] for line in error_tree_from_docstring() if (match := _TREE_LINE.match(line))]
    drawn = {getattr(crmkit.errors, name) for name in names}
    public = {
        value
        for name in crmkit.errors.__all__
        if isinstance(value := getattr(crmkit.errors, name), type) and issubclass(value, Exception)
    }
    assert drawn == public
