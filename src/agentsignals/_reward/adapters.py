"""Thin adapters from reward records to the trainers people use. Each is checked against the
trainer's own interface (docs/rewards.md cites the source it follows); none imports a
trainer unless it must return the trainer's own type.

* **verl**: :func:`verl_compute_score` is a ``custom_reward_function`` (verl calls
  ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **reward_kwargs)``
  and takes a float or a dict with ``score``; other keys become ``reward_extra_info``);
  :func:`verl_token_rewards` spreads per-turn values over a response's tokens, each turn's value
  on the last token of its assistant segment (``response_mask`` runs of 1), for a custom
  reward manager.
* **rLLM**: :class:`RLLMEvaluator` implements the ``Evaluator`` protocol
  (``evaluate(task, episode) -> EvalOutput(reward, is_correct, signals=[Signal(name, value)])``)
  and :func:`rllm_assign_step_rewards` sets ``Step.reward`` per turn.
* **SkyRL**: :class:`SkyRLTurnRewards` wraps a ``BaseTextEnv`` so each ``step()`` returns the
  recorded turn's reward (per-turn, as SkyRL places it at the turn's last token).
* **TRL**: :func:`trl_reward_funcs` gives ``GRPOTrainer`` one reward function per component
  (``(prompts, completions, **kwargs) -> list[float | None]``; dataset columns arrive as
  keyword lists, ``None`` where a sample has no reward).

Rewards are looked up by attempt id (``attempt_id`` / ``agentsignals_attempt_id`` in the
sample's extra info or dataset row), else by task id (the latest attempt of the task).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "REWARDS_ENV",
    "RLLMEvaluator",
    "RewardTable",
    "SkyRLTurnRewards",
    "rllm_assign_step_rewards",
    "trl_reward_funcs",
    "verl_compute_score",
    "verl_token_rewards",
]

REWARDS_ENV = "AGENTSIGNALS_REWARDS"
"""The reward file an adapter reads when it is not given one (JSON lines or Parquet)."""

_ID_KEYS = ("attempt_id", "agentsignals_attempt_id")
_TASK_KEYS = ("task_id", "instance_id", "agentsignals_task_id")


class RewardTable:
    """Reward rows (``agentsignals rewards`` output) indexed for lookups."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.trajectories: dict[str, dict[str, Any]] = {}
        self.turns: dict[str, list[dict[str, Any]]] = {}
        self._by_task: dict[str, dict[str, Any]] = {}
        for row in rows:
            r = dict(row)
            if r.get("kind") == "trajectory":
                self.trajectories[str(r["attempt_id"])] = r
                task = r.get("task_id")
                if task is not None:
                    old = self._by_task.get(str(task))
                    if old is None or (r.get("attempt_index") or 0) >= (
                        old.get("attempt_index") or 0
                    ):
                        self._by_task[str(task)] = r
            elif r.get("kind") == "turn":
                self.turns.setdefault(str(r["attempt_id"]), []).append(r)
        for turns in self.turns.values():
            turns.sort(key=lambda t: t.get("turn_index") or 0)
        self.component_names = sorted(
            {k for t in self.trajectories.values() for k in (t.get("components") or {})}
            | {u for t in self.trajectories.values() for u in _unavailable(t)}
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> RewardTable:
        from agentsignals._reward.run import read_rewards

        source = path or os.environ.get(REWARDS_ENV)
        if not source:
            raise LookupError(f"no reward file: pass one or set {REWARDS_ENV}")
        return cls(read_rewards(source))

    def find(self, info: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The trajectory row a sample's info names (attempt id, else task id)."""
        info = info or {}
        for key in _ID_KEYS:
            value = info.get(key)
            if value is not None and str(value) in self.trajectories:
                return self.trajectories[str(value)]
        for key in _TASK_KEYS:
            value = info.get(key)
            if value is not None and str(value) in self._by_task:
                return self._by_task[str(value)]
        return None

    def turn_values(self, attempt_id: str) -> list[float]:
        return [float(t["value"]) for t in self.turns.get(attempt_id, [])]


def _unavailable(row: Mapping[str, Any]) -> list[str]:
    value = row.get("unavailable")
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return list(value or [])


_TABLES: dict[str, RewardTable] = {}


def _table(source: Any) -> RewardTable:
    if isinstance(source, RewardTable):
        return source
    path = str(source or os.environ.get(REWARDS_ENV) or "")
    if not path:
        raise LookupError(f"no reward file: pass rewards= (reward_kwargs) or set {REWARDS_ENV}")
    mtime = Path(path).stat().st_mtime_ns
    key = f"{path}\0{mtime}"
    if key not in _TABLES:
        _TABLES.clear()
        _TABLES[key] = RewardTable.load(path)
    return _TABLES[key]


# ------------------------------------------------------------------------------------- verl


def verl_compute_score(
    data_source: Any = None,
    solution_str: Any = None,
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    *,
    rewards: Any = None,
    missing: str = "raise",
    **_: Any,
) -> dict[str, float]:
    """verl ``custom_reward_function``: ``{"score": trajectory reward, "outcome", "shaping",
    each component}`` (a component the attempt could not support is NaN). ``rewards``: the
    reward file (``custom_reward_function.reward_kwargs.rewards``) or ``AGENTSIGNALS_REWARDS``.
    A sample with no reward raises LookupError, or scores 0.0 with ``missing="zero"`` (then
    ``agentsignals_found`` is 0.0)."""
    table = _table(rewards)
    row = table.find(extra_info)
    if row is None:
        if missing != "zero":
            raise LookupError(
                f"agentsignals: no reward for this sample (extra_info keys: "
                f"{sorted((extra_info or {}).keys())}); put its attempt_id in extra_info"
            )
        out = {"score": 0.0, "agentsignals_found": 0.0, "outcome": math.nan, "shaping": math.nan}
        out.update({name: math.nan for name in table.component_names})
        return out
    comps = row.get("components") or {}
    unavailable = set(_unavailable(row))
    out = {
        "score": float(row["value"]),
        "agentsignals_found": 1.0,
        "outcome": float(row["outcome"]),
        "shaping": float(row["shaping"]),
    }
    for name in table.component_names:
        out[name] = math.nan if name in unavailable else float(comps.get(name, 0.0))
    return out


def verl_token_rewards(response_mask: Sequence[Any], turn_values: Sequence[float]) -> list[float]:
    """Per-token rewards for one response: each turn's value on the last token of the turn's
    assistant segment (a run of 1s in ``response_mask``; 0s are tool or user tokens), zeros
    elsewhere. ``response_mask`` may be a list or a tensor (``.tolist()`` is used)."""
    mask = response_mask.tolist() if hasattr(response_mask, "tolist") else list(response_mask)
    ends = [i for i, m in enumerate(mask) if m and (i + 1 == len(mask) or not mask[i + 1])]
    if len(ends) != len(turn_values):
        raise ValueError(
            f"the response has {len(ends)} assistant segments but {len(turn_values)} turn "
            "rewards: the rollout and the recorded attempt do not match"
        )
    out = [0.0] * len(mask)
    for end, value in zip(ends, turn_values, strict=True):
        out[end] = float(value)
    return out


# ------------------------------------------------------------------------------------- rLLM


@dataclass
class _Signal:
    name: str
    value: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class _EvalOutput:
    reward: float
    is_correct: bool
    signals: list[Any] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def _rllm_types() -> tuple[Any, Any]:
    try:
        from rllm.eval.types import EvalOutput, Signal  # type: ignore[import-not-found]

        return EvalOutput, Signal
    except ImportError:
        return _EvalOutput, _Signal


class RLLMEvaluator:
    """An rLLM ``Evaluator``: the trajectory reward, ``is_correct`` from the verifier, and one
    ``Signal`` per shaping component (components the attempt could not support are left
    out). The task dict (or the episode's ``metadata``) names the attempt or the task."""

    def __init__(self, rewards: Any = None) -> None:
        self.table = _table(rewards)

    def evaluate(self, task: Mapping[str, Any], episode: Any = None) -> Any:
        eval_output, signal = _rllm_types()
        info = dict(getattr(episode, "metadata", None) or {})
        info.update(task or {})
        row = self.table.find(info)
        if row is None:
            return eval_output(
                reward=0.0, is_correct=False, signals=[], metadata={"reason": "no_reward_record"}
            )
        unavailable = set(_unavailable(row))
        signals = [
            signal(name=name, value=float(v))
            for name, v in sorted((row.get("components") or {}).items())
            if name not in unavailable
        ]
        signals.insert(0, signal(name="outcome", value=float(row["outcome"])))
        return eval_output(
            reward=float(row["value"]),
            is_correct=bool(row.get("resolved")),
            signals=signals,
            metadata={"attempt_id": row["attempt_id"], "spec": row.get("spec")},
        )


def rllm_assign_step_rewards(trajectory: Any, attempt_id: str, rewards: Any = None) -> None:
    """Set ``step.reward`` of an rLLM ``Trajectory``'s steps from the attempt's turn rewards
    (one step per turn, in order) and ``trajectory.reward`` to the trajectory reward."""
    table = _table(rewards)
    values = table.turn_values(attempt_id)
    steps = list(getattr(trajectory, "steps", []) or [])
    if len(steps) != len(values):
        raise ValueError(
            f"the trajectory has {len(steps)} steps but attempt {attempt_id} has "
            f"{len(values)} turn rewards"
        )
    for step, value in zip(steps, values, strict=True):
        step.reward = value
    row = table.trajectories.get(attempt_id)
    if row is not None:
        trajectory.reward = float(row["value"])


# ------------------------------------------------------------------------------------ SkyRL


class SkyRLTurnRewards:
    """Wraps a SkyRL ``BaseTextEnv``: ``step(action)`` runs the environment and returns its
    output with ``reward`` replaced by the recorded attempt's reward for this turn (the i-th
    step gets turn i's value), and the agentsignals components in ``metadata``."""

    def __init__(self, env: Any, attempt_id: str, rewards: Any = None) -> None:
        self.env = env
        self.attempt_id = attempt_id
        table = _table(rewards)
        self._turns = table.turns.get(attempt_id, [])
        if not self._turns:
            raise LookupError(f"no turn rewards for attempt {attempt_id}")
        self._i = 0

    def init(self, prompt: Any) -> Any:
        self._i = 0
        return self.env.init(prompt)

    def step(self, action: str) -> Any:
        out = self.env.step(action)
        if self._i >= len(self._turns):
            raise IndexError(
                f"step {self._i + 1}: attempt {self.attempt_id} has {len(self._turns)} turns"
            )
        turn = self._turns[self._i]
        self._i += 1
        out["reward"] = float(turn["value"])
        metadata = dict(out.get("metadata") or {})
        metadata["agentsignals"] = {
            "turn_index": turn.get("turn_index"),
            "span_id": turn.get("span_id"),
            "components": turn.get("components"),
            "credited": turn.get("credited"),
        }
        out["metadata"] = metadata
        return out

    def close(self) -> Any:
        return self.env.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


# -------------------------------------------------------------------------------------- TRL


def trl_reward_funcs(
    rewards: Any = None, components: Sequence[str] | None = None
) -> list[Callable[..., list[float | None]]]:
    """Reward functions for ``GRPOTrainer(reward_funcs=...)``: ``agentsignals_outcome`` and one
    ``agentsignals_<component>`` each (weight them with ``reward_weights``). A dataset column
    ``attempt_id`` (or ``task_id``) names each sample's attempt; a sample without a reward
    record, or whose attempt could not support a component, gets None (TRL ignores it)."""
    table = _table(rewards)
    names = ["outcome", *(components if components is not None else table.component_names)]

    def make(name: str) -> Callable[..., list[float | None]]:
        def reward(
            prompts: Any = None, completions: Any = None, **kwargs: Any
        ) -> list[float | None]:
            n = len(completions) if completions is not None else len(prompts or [])
            out: list[float | None] = []
            for i in range(n):
                info = {
                    k: v[i]
                    for k, v in kwargs.items()
                    if isinstance(v, list | tuple) and len(v) == n
                }
                row = table.find(info)
                if row is None or name in _unavailable(row):
                    out.append(None)
                elif name == "outcome":
                    out.append(float(row["outcome"]))
                else:
                    out.append(float((row.get("components") or {}).get(name, 0.0)))
            return out

        reward.__name__ = f"agentsignals_{name}"
        reward.__qualname__ = reward.__name__
        return reward

    return [make(n) for n in names]
