"""The evaluation settings: read from the environment once, at the edge."""

import pytest

from june_pipelines.evals.settings import EvalSettings, SettingsError


def test_sources_come_from_their_variables_and_an_explicit_source_wins() -> None:
    settings = EvalSettings.from_env({"JUNE_HUMANEVALPLUS_SOURCE": "/data/HumanEvalPlus.jsonl.gz",
                                      "JUNE_MBPP_SOURCE": "/data/mbpp.jsonl", "JUNE_MBPPPLUS_SOURCE": ""})
    assert settings.source_for("humanevalplus") == "/data/HumanEvalPlus.jsonl.gz"
    assert settings.source_for("mbpp") == "/data/mbpp.jsonl"
    assert settings.source_for("mbppplus") is None  # empty means unset: the hub
    assert settings.source_for("humaneval") is None
    assert settings.source_for("mbpp", "/elsewhere.jsonl") == "/elsewhere.jsonl"


def test_regression_severity_is_error_unless_warn() -> None:
    assert EvalSettings.from_env({}).regression_severity == "error"
    assert EvalSettings.from_env({"JUNE_REGRESSION_GATE": " WARN "}).regression_severity == "warn"
    with pytest.raises(SettingsError, match="JUNE_REGRESSION_GATE='block': expected error or warn"):
        EvalSettings.from_env({"JUNE_REGRESSION_GATE": "block"})
