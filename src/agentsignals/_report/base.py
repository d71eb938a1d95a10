"""The base of a report section (see `agentsignals._report.sections` for the registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentsignals._report.context import Context


class Section:
    id: str = ""
    title: str = ""

    def build(self, ctx: Context) -> dict[str, Any] | None:
        raise NotImplementedError

    def plots(self, result: dict[str, Any]) -> dict[str, str]:
        """SVG strings by name."""
        return {}

    def markdown(self, result: dict[str, Any]) -> list[str]:
        return []

    def template(self) -> str:
        return f"{self.id}.html.j2"
