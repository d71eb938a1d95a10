"""The signal reference (semconv/model/signals.yaml -> docs/signals.md) and the record types
agree: every record field is declared with its type, nothing else is declared, and the
inventory's signals are all there under their inventory names."""

from __future__ import annotations

import types
import typing
from pathlib import Path

import msgspec
import yaml

from agentsignals._features.record import AttemptRecord

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = ROOT / "semconv" / "model" / "signals.yaml"


def _type_name(hint: object) -> str:
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _type_name(inner)
    if origin is list:
        (item,) = typing.get_args(hint)
        return f"list[{_type_name(item)}]"
    if origin is dict:
        key, value = typing.get_args(hint)
        return f"dict[{_type_name(key)}, {_type_name(value)}]"
    assert isinstance(hint, type)
    return hint.__name__


def _record_fields() -> dict[str, str]:
    out: dict[str, str] = {}
    hints = typing.get_type_hints(AttemptRecord)
    for name in AttemptRecord.__struct_fields__:
        hint = hints[name]
        if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
            group_hints = typing.get_type_hints(hint)
            for field in hint.__struct_fields__:
                out[f"{name}.{field}"] = _type_name(group_hints[field])
        else:
            out[name] = _type_name(hint)
    return out


def test_every_record_field_is_declared_with_its_type() -> None:
    declared = {s["name"]: s["type"] for s in yaml.safe_load(SIGNALS.read_text())["signals"]}
    assert declared == _record_fields()


def test_the_inventorys_signals_are_there_under_their_names() -> None:
    declared = {s["name"] for s in yaml.safe_load(SIGNALS.read_text())["signals"]}
    inventory = {
        "behavior.turn_count", "behavior.tool_call_count", "behavior.edit_calls",
        "behavior.bash_mediated_edits", "behavior.touched_files", "behavior.diff_lines",
        "behavior.tool_sequence", "behavior.localization_mode", "behavior.localized_correct_file",
        "behavior.files_searched_before_edit", "behavior.files_read_before_edit",
        "behavior.edit_to_read_ratio", "reasoning.has_reasoning_blocks",
        "reasoning.reasoning_tokens_total", "reasoning.plan_steps_detected",
        "reasoning.self_correction_count", "reasoning.phase_transitions",
        "reasoning.plannotator_phases", "tokens.input_tokens_total", "tokens.output_tokens_total",
        "tokens.cache_read_tokens", "tokens.cache_write_tokens", "tokens.cache_read_ratio",
        "tokens.context_growth_curve", "tokens.cost_usd", "verification.reward",
        "verification.patch_outcome_label", "verification.fail_to_pass_count",
        "verification.pass_to_fail_count", "verification.pass_to_pass_count",
        "verification.fail_to_fail_count", "verification.patch_applies", "infra.wall_time_s",
        "infra.timed_out", "infra.attempt_index", "anticipation.first_tool_precision",
        "anticipation.scope_drift", "treatment.attempt1_tool_cap", "treatment.retry_tool_cap",
        "treatment.agent_type", "treatment.model_id", "treatment.dataset",
        "treatment.concurrency", "treatment.timeout_s",
    }  # fmt: skip
    assert inventory <= declared
    marked = {
        s["name"] for s in yaml.safe_load(SIGNALS.read_text())["signals"] if s.get("inventory")
    }
    assert inventory <= marked


def test_the_generated_reference_lists_every_signal() -> None:
    doc = (ROOT / "docs" / "signals.md").read_text()
    for name in _record_fields():
        assert f"`{name}`" in doc, name


def test_every_session_record_field_is_declared_with_its_type() -> None:
    from agentsignals._features.record import SessionRecord

    out: dict[str, str] = {}
    hints = typing.get_type_hints(SessionRecord)
    for name in SessionRecord.__struct_fields__:
        hint = hints[name]
        if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
            group_hints = typing.get_type_hints(hint)
            for field in hint.__struct_fields__:
                out[f"{name}.{field}"] = _type_name(group_hints[field])
        else:
            out[name] = _type_name(hint)
    data = yaml.safe_load(SIGNALS.read_text())
    declared = {s["name"]: s["type"] for s in data["session_signals"]}
    assert declared == out
    # The inventory's user.*, dynamics.* and anticipation.* names of sessions are all there.
    inventory = {s["name"] for s in data["session_signals"] if s.get("inventory")}
    assert {
        "user.session_outcome", "user.output_applied", "user.changes_reverted",
        "user.turn_ratio", "user.user_turn_count", "user.user_msg_lengths",
        "user.turn_timestamps", "user.region_edit_history", "user.region_re_edit_count",
        "user.region_edit_convergence", "user.agent_hedging_rate", "user.agent_hedging_curve",
        "user.confirmation_requests", "user.time_to_first_edit_s", "user.per_turn_latency_s",
        "user.compaction_events", "user.model_changes", "user.tool_error_rate",
        "user.tool_result_sizes", "user.prior_sessions_same_repo",
        "user.prior_sessions_same_region", "user.session_reopened_within_s",
        "dynamics.cp_curve", "dynamics.max_cp", "dynamics.drift_onset_turn",
        "dynamics.correction_ratio", "dynamics.assumption_lock_turn", "dynamics.gd_inaction",
        "dynamics.gd_actions", "dynamics.plan_ged", "dynamics.repetition_rate",
        "dynamics.user_msg_length_slope", "dynamics.session_failure_mode",
        "dynamics.intent_coherence_curve", "anticipation.task_paraphrase_accuracy",
        "anticipation.plan_optimality", "anticipation.first_tool_precision",
        "anticipation.scope_drift", "anticipation.clarification_sought",
        "anticipation.assumption_count", "anticipation.prompt_underspecification",
        "anticipation.conflation_turn", "anticipation.instruction_adherence",
        "anticipation.goal_alignment_at_close", "anticipation.session_attribution",
    } <= inventory  # fmt: skip
