"""MkDocs hooks for the crmkit site (listed under ``hooks:`` in mkdocs.yml, excluded from the pages).

crmkit's docstrings use Sphinx-style roles (``:class:`~crmkit.errors.CrmError```) and ``::`` before
literal blocks, which read well in the source and in ``help()``. Markdown knows neither, so the API
reference would show ``:class:`` verbatim; this hook renders a role as inline code (``~`` keeps the last
component, as Sphinx does) and a paragraph-ending ``::`` as a single colon.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|data|meth|attr|mod|exc|obj|const):"
    r"<code>(?P<tilde>~?)(?P<target>[^<]*)</code>"
)
_LITERAL_INTRO = re.compile(r"::</p>")


def _shown(match: re.Match[str]) -> str:
    target = match["target"]
    if match["tilde"]:
        target = target.rsplit(".", 1)[-1]
    return f"<code>{target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    """Render Sphinx roles as code and ``::`` before a literal block as ``:``."""
    return _LITERAL_INTRO.sub(":</p>", _ROLE.sub(_shown, html))
