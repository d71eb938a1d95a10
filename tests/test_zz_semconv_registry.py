"""The semantic-convention registry is the source of truth: generated files are current, and every
attribute the SDK emits is declared with the declared type.

Named test_zz_* so that, in a full run, it executes after every other test and checks the
attributes the whole suite emitted; run alone, it still exercises the whole public API itself.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import agentsignals
from agentsignals import semconv as sc
from agentsignals.testing import capture_spans

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "semconv" / "generate.py"


def _load_generator() -> object:
    spec = importlib.util.spec_from_file_location("semconv_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["semconv_generate"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_constants_and_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_registry_edit_makes_the_check_fail(tmp_path: Path) -> None:
    copy = tmp_path / "semconv"
    shutil.copytree(ROOT / "semconv", copy)
    registry = copy / "model" / "registry.yaml"
    text = registry.read_text()
    assert "Identifier of the trial;" in text
    registry.write_text(text.replace("Identifier of the trial;", "The identifier of the trial;"))
    gen = _load_generator()
    files = gen.generated_files(copy)  # type: ignore[attr-defined]
    current = {p: p.read_text() for p in files}
    assert any(files[p] != current[p] for p in files)


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (("key: agent_signals.turn.phase", "key: turn.phase"), "must live under agent_signals"),
        (
            (
                "- {ref: agent_signals.trial.id, requirement_level: required}",
                "- {ref: agent_signals.nope, requirement_level: required}",
            ),
            "not defined",
        ),
        (
            (
                "    type: int\n    stability: development\n    brief: Zero-based index of the attempt",  # noqa: E501
                "    type: integer\n    stability: development\n    brief: Zero-based index of the attempt",  # noqa: E501
            ),
            "unknown type",
        ),
    ],
)
def test_registry_validation_rejects_bad_definitions(
    tmp_path: Path, mutation: tuple[str, str], message: str
) -> None:
    copy = tmp_path / "semconv"
    shutil.copytree(ROOT / "semconv", copy)
    for name in ("registry.yaml", "spans.yaml"):
        path = copy / "model" / name
        path.write_text(path.read_text().replace(*mutation, 1))
    gen = _load_generator()
    with pytest.raises(gen.RegistryError, match=message):  # type: ignore[attr-defined]
        gen.load_registry(copy)  # type: ignore[attr-defined]


def test_genai_names_are_reused_not_redefined() -> None:
    own = [k for k in sc.ATTRIBUTE_TYPES if k.startswith("agent_signals.")]
    assert own and all(not k.startswith(("gen_ai.", "agent.")) for k in own)
    for key in (
        "gen_ai.operation.name",
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.request.model",
        "gen_ai.agent.name",
        "error.type",
    ):
        assert key in sc.ATTRIBUTE_TYPES
    assert {"read", "search", "edit", "shell", "test", "submit", "other"} <= set(
        sc.ENUM_VALUES["agent_signals.tool.category"]
    )
    assert sc.SCHEMA_URL.endswith("/0.1.0")


def _exercise_everything() -> None:
    """Touch every recording method of the public API, with content capture on."""
    with capture_spans(capture_content=True, max_value_bytes=100, max_span_bytes=200):  # noqa: SIM117
        with agentsignals.trial("t", dataset="d") as trial:
            assert trial.id
            with agentsignals.attempt(
                agent_type="a", model_id="m", dataset="d", attempt1_tool_cap=1, retry_tool_cap=2,
                concurrency=3, timeout_s=4, agent_name="n", provider="p", conversation_id="c",
            ) as attempt:  # fmt: skip
                attempt.set_treatment(agent_type="a2", timeout_s=5)
                attempt.set_modes(localization_mode="l", recovery_mode="r", final_failure_mode="f")
                attempt.mark_timed_out()
                with agentsignals.turn(model="m", provider="p", phase="explore") as turn:
                    turn.record_usage(
                        input_tokens=1, output_tokens=2, cache_read_tokens=3,
                        cache_write_tokens=4, reasoning_tokens=5,
                    )  # fmt: skip
                    turn.record_cost(0.5)
                    turn.record_model(
                        request="m", response="m2", provider="p", finish_reasons=["stop"]
                    )
                    turn.record_reasoning("think " * 50)
                    turn.record_messages(input=[{"role": "user"}], output=[{"role": "assistant"}])
                    turn.set_phase("verify")
                    with agentsignals.tool(
                        "bash", call_id="c1", arguments={"command": "pytest"}, files=["a.py"],
                        tool_type="function",
                    ) as tool:  # fmt: skip
                        tool.record_result("AKIAIOSFODNN7EXAMPLE " + "x" * 300, exit_code=1)
                        tool.set_files(["b.py"])
                        tool.set_category("test")
                        tool.mark_timed_out()
                        tool.set_error("Boom", "it failed")
                        tool.record_arguments({"command": "pytest -x"})
                    with pytest.raises(ValueError), agentsignals.tool("edit_file"):
                        raise ValueError("x")


def test_every_emitted_attribute_is_declared_with_its_type() -> None:
    from conftest import EMITTED

    _exercise_everything()
    assert EMITTED, "no spans were recorded"
    undeclared = sorted(k for k in EMITTED if k not in sc.ATTRIBUTE_TYPES)
    assert not undeclared, f"emitted but not in the semconv registry: {undeclared}"
    wrong = {
        k: (sorted(types), sc.ATTRIBUTE_TYPES[k])
        for k, types in EMITTED.items()
        if types != {sc.ATTRIBUTE_TYPES[k]}
    }
    assert not wrong, f"emitted with a type other than declared: {wrong}"
    for key, allowed in sc.ENUM_VALUES.items():
        if key in EMITTED and key != sc.GEN_AI_OPERATION_NAME:
            assert allowed, key
