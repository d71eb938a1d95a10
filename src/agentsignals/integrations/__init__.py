"""Framework integrations: the agents people already run, traced in one line.

    import agentsignals
    agentsignals.configure()
    agentsignals.instrument("dspy")          # or agentsignals.integrations.dspy.instrument()

Each integration turns a framework's own hooks into trial › attempt › turn › tool spans: a turn
per model call (with usage, cost and the component that made it), a tool span per tool call
(through the same tool handle and classifier as hand-written instrumentation), and the agent's
repository as the attempt's workspace, so edits made through the shell are seen. A framework is
imported only when its `instrument()` runs. Integrations cooperate with OpenInference and
OpenLLMetry instrumentors turned on beside them: their model-call spans nest under our turns and
usage is counted once.

When the framework runs outside an attempt, the integration opens a trial and an attempt around
each top-level agent run; inside `agentsignals.trial(...)` / `attempt(...)` it records into the
caller's attempt instead.
"""

from __future__ import annotations

import importlib
from typing import Any

# name → module, for agentsignals.instrument(name). Aliases spell the framework the way its
# users do.
_MODULES: dict[str, str] = {
    "dspy": "dspy",
    "mini_swe_agent": "mini_swe_agent",
    "minisweagent": "mini_swe_agent",
    "mini-swe-agent": "mini_swe_agent",
    "openai": "openai",
    "anthropic": "anthropic",
    "litellm": "litellm",
    "openai_agents": "openai_agents",
    "openai-agents": "openai_agents",
    "agents": "openai_agents",
    "smolagents": "smolagents",
    "langgraph": "langchain",
    "langchain": "langchain",
    "claude_agent_sdk": "claude_agent_sdk",
    "claude-agent-sdk": "claude_agent_sdk",
}

NAMES: tuple[str, ...] = tuple(sorted(set(_MODULES.values())))
"""The integrations this version ships."""


def _module(name: str) -> Any:
    key = str(name).strip().lower()
    target = _MODULES.get(key) or _MODULES.get(key.replace("-", "_"))
    if target is None:
        raise ValueError(
            f"agentsignals has no integration named {name!r} (known: {', '.join(NAMES)})"
        )
    return importlib.import_module(f"agentsignals.integrations.{target}")


def instrument(name: str, **options: Any) -> bool:
    """Turn on the integration for framework `name`; True when it is on.

    An unknown name raises ValueError (a set-up mistake); a framework that is not installed,
    or an instrumentation that fails, is logged and returns False: the host agent still runs.
    """
    return bool(_module(name).instrument(**options))


def uninstrument(name: str) -> None:
    """Turn the integration for `name` off again (restores the framework's functions)."""
    _module(name).uninstrument()
