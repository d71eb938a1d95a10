"""The report's sections, in order. A section computes a JSON-ready result from the context,
draws its plots, and says what it found in a few Markdown lines; its HTML is a Jinja2 template
`templates/<id>.html.j2` that receives `r` (the result), `plots` and the shared macros.

Add a section with::

    from agentsignals._report.sections import Section, register

    class Sessions(Section):
        id = "sessions"
        title = "Product sessions"
        def build(self, ctx): ...        # dict, or None when there is nothing to show

    register(Sessions(), after="behaviour")

and a template `templates/sessions.html.j2` (or override `html`).
"""

from __future__ import annotations

from agentsignals._report.base import Section

__all__ = ["Section", "default_sections", "register"]

_REGISTERED: list[tuple[Section, str | None]] = []


def register(section: Section, *, after: str | None = None) -> None:
    """Add a section (replacing one with the same id), after the section `after` or last."""
    _REGISTERED.append((section, after))


def default_sections() -> list[Section]:
    """The built-in sections in order, then the registered ones where they asked to go."""
    from agentsignals._report.sections import (
        behaviour,
        clusters,
        compare,
        failures,
        origins,
        overview,
        recovery,
        rewards,
        sessions,
    )

    order: list[Section] = [
        m.SECTION
        for m in (
            overview,
            failures,
            behaviour,
            compare,
            origins,
            clusters,
            recovery,
            rewards,
            sessions,
        )
    ]
    for section, after in _REGISTERED:
        order = [s for s in order if s.id != section.id]
        at = next((i + 1 for i, s in enumerate(order) if s.id == after), len(order))
        order.insert(at, section)
    return order
