"""The report: attempt records become answers (needs the `report` extra).

    from agentsignals import report

    frame = report.load(["attempts.jsonl"])          # or trace folders, .parquet, source=URL
    result = report.build(frame, report.Options(by=("agent",)))
    result.write_html("report.html")                 # one offline file: plots, tables, drill-down
    result.write_json("report.json")                 # the same numbers
    print(result.markdown())                         # a short summary

Any boolean, categorical or numeric field of an attempt record (including `judge.*` and fields
added later) becomes a row of the behaviour table. `agentsignals report` and `agentsignals show`
are the command-line forms; docs/report.md explains every statistic.
"""

from __future__ import annotations

from agentsignals._report.build import Report, apply_filters
from agentsignals._report.build import build_report as build
from agentsignals._report.calibration import Calibration, load_calibration
from agentsignals._report.context import Options
from agentsignals._report.frame import Frame
from agentsignals._report.sections import Section, register
from agentsignals._report.sources import from_records, load

__all__ = [
    "Calibration",
    "Frame",
    "Options",
    "Report",
    "Section",
    "apply_filters",
    "build",
    "from_records",
    "load",
    "load_calibration",
    "register",
]
