"""The report: attempt records become answers (statistics in `stats`, the data in `frame`, one
module per section in `sections`, HTML/Markdown/JSON in `render`). Everything here needs the
`report` extra (numpy, scipy, statsmodels, matplotlib, jinja2) and is imported only by the
`agentsignals report` / `agentsignals show` commands and `agentsignals.report`."""
