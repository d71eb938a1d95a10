"""Dense rewards: trace signals turned into per-turn and trajectory rewards for RL trainers.

    from agentsignals import rewards

    run = rewards.from_traces(["agentsignals-output/traces"], records=verified_and_judged)
    rewards.write(run, "rewards.jsonl")          # or .parquet: one row per turn and per
                                                 # trajectory, keyed by span id
    run.trajectories[0].value                    # outcome + shaping, under the spec
    run.turns[0].components                      # {"validation": 0.03, ...}

The spec (``rewards.load_spec("builtin")`` or a YAML file) names the outcome values, the
shaping components and their weights, the shaping cap and the credit assignment; its name,
version and hash are in every record. Adapters for verl, rLLM, SkyRL and TRL are below;
docs/rewards.md says which signals a policy can game and how the report tracks them.
"""

from __future__ import annotations

from agentsignals._reward.adapters import (
    REWARDS_ENV,
    RewardTable,
    RLLMEvaluator,
    SkyRLTurnRewards,
    rllm_assign_step_rewards,
    trl_reward_funcs,
    verl_compute_score,
    verl_token_rewards,
)
from agentsignals._reward.compute import (
    AttemptRewards,
    TrajectoryReward,
    TurnReward,
    attempt_rewards,
)
from agentsignals._reward.run import RewardRun, read_rewards
from agentsignals._reward.run import rewards_from_spans as from_spans
from agentsignals._reward.run import rewards_from_traces as from_traces
from agentsignals._reward.run import write_rewards as write
from agentsignals._reward.spec import (
    RULES,
    Component,
    RewardSpec,
    SpecError,
    builtin_spec,
    load_spec,
)

__all__ = [
    "REWARDS_ENV",
    "RULES",
    "AttemptRewards",
    "Component",
    "RLLMEvaluator",
    "RewardRun",
    "RewardSpec",
    "RewardTable",
    "SkyRLTurnRewards",
    "SpecError",
    "TrajectoryReward",
    "TurnReward",
    "attempt_rewards",
    "builtin_spec",
    "from_spans",
    "from_traces",
    "load_spec",
    "read_rewards",
    "rllm_assign_step_rewards",
    "trl_reward_funcs",
    "verl_compute_score",
    "verl_token_rewards",
    "write",
]
