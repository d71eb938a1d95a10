"""The LLM judge: transcripts rendered from spans, rubrics, model clients, a persistent call
cache, first-wrong-step attribution, evaluation against labels, failure clusters and the
Docent export. Public as `agentsignals.judge`; the command is `agentsignals judge`.

Nothing here is imported by `import agentsignals`: the judge loads on first use.
"""
