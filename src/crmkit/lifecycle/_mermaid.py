"""Drawing a lifecycle as a Mermaid state diagram (private)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from crmkit.lifecycle._definition import StageCategory

if TYPE_CHECKING:
    from crmkit.lifecycle._definition import Lifecycle

__all__ = ["mermaid"]

_COLON = re.compile(r"\s*:\s*")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Words Mermaid's state diagrams read as syntax, so a stage called "end" gets a neutral id.
_RESERVED = frozenset({"end", "state", "direction", "note", "as", "class", "classDef", "style", "click"})
_STYLES = {
    StageCategory.WON: "fill:#d9f2d9,stroke:#2e7d32",
    StageCategory.LOST: "fill:#f8d7da,stroke:#b71c1c",
    StageCategory.CLOSED: "fill:#e0e0e0,stroke:#616161",
}


def _text(value: str) -> str:
    """A label Mermaid shows verbatim: no quotes, statement separators or entity codes."""
    text = value.replace('"', "'").replace(";", ",").replace("#", "no. ")
    return _COLON.sub(" - ", text)


def mermaid(lifecycle: Lifecycle) -> str:
    """Return the ``stateDiagram-v2`` source of ``lifecycle``.

    Stages whose name is a plain identifier keep it as their id; others get ``s<index>``
    with the name as label. Several transitions between the same two stages share one
    arrow; won, lost and closed stages are coloured by category.
    """
    ids: dict[str, str] = {}
    lines = ["stateDiagram-v2"]
    for index, stage in enumerate(lifecycle.stages):
        plain = _IDENTIFIER.fullmatch(stage.name) and stage.name not in _RESERVED
        ids[stage.name] = stage.name if plain else f"s{index}"
        if not plain or stage.label is not None:
            lines.append(f'    state "{_text(stage.title)}" as {ids[stage.name]}')
    lines.append(f"    [*] --> {ids[lifecycle.initial]}")
    arrows: dict[tuple[str, str], list[str]] = {}
    for source, target, name in lifecycle.edges():
        arrows.setdefault((source, target), []).append(name)
    for (source, target), names in arrows.items():
        lines.append(f"    {ids[source]} --> {ids[target]} : {_text(', '.join(names))}")
    lines.extend(f"    {ids[stage.name]} --> [*]" for stage in lifecycle.stages if stage.terminal)
    for category, style in _STYLES.items():
        members = [ids[stage.name] for stage in lifecycle.stages if stage.category is category]
        if members:
            lines.append(f"    classDef {category.value} {style}")
            lines.append(f"    class {','.join(members)} {category.value}")
    return "\n".join(lines) + "\n"
