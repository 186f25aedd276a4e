"""`june doctor` run for real on this machine, and with environments that break a check on purpose:
the JSON contract, the exit codes, which checks a configured feature requires, and no secret in any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from docker_support import require_docker
from llama_server import LlamaServer, free_port
from postgres_support import fresh_database

from june_pipelines.doctor import Features

JUNE = Path(sys.executable).with_name("june")
CONFIG_PREFIXES = ("JUNE_", "TELEGRAM_", "DISCORD_", "DOCKER_", "DAGSTER_")
API_KEY = "doctor-test-api-key-0000"


def doctor(tmp_path: Path, *args: str, **env: str) -> tuple[int, dict, str]:
    """Run `june doctor --json` with only the given June settings; (exit code, report, all output)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}
    clean["JUNE_HOME"] = str(tmp_path / "june")
    out = subprocess.run([str(JUNE), "doctor", "--json", *args], env={**clean, **env},
                         capture_output=True, text=True, timeout=300)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return out.returncode, report, out.stdout + out.stderr


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def assert_contract(code: int, report: dict) -> None:
    assert set(report) == {"ok", "checks"} and isinstance(report["ok"], bool) and report["checks"]
    for check in report["checks"]:
        assert {"name", "ok", "detail", "fix"} <= set(check)
        assert isinstance(check["ok"], bool) and check["detail"]
        assert check["ok"] or check["fix"] or not check["required"], check  # every required miss says what to do
    assert report["ok"] == all(c["ok"] for c in report["checks"] if c["required"])
    assert code == (0 if report["ok"] else 1)


def test_on_this_machine_the_table_and_the_json_agree(tmp_path) -> None:
    code, report, _ = doctor(tmp_path)
    assert_contract(code, report)
    checks = by_name(report)
    assert checks["python"]["ok"] and checks["model:llm"]["ok"] and checks["dagster-instance"]["ok"]
    assert not checks["gpu"]["required"]  # nothing is served here: a missing GPU is not a failure
    clean = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}
    table = subprocess.run([str(JUNE), "doctor"], env={**clean, "JUNE_HOME": str(tmp_path / "june")},
                           capture_output=True, text=True, timeout=300)
    assert table.returncode == code
    assert ("Ready:" in table.stdout) == report["ok"]
    for name, check in checks.items():
        assert f"{'ok' if check['ok'] else 'FAIL' if check['required'] else 'warn':<4}  {name}" in table.stdout


def test_a_broken_docker_host_fails_only_where_docker_is_required(tmp_path) -> None:
    require_docker()
    bogus = {"DOCKER_HOST": "tcp://127.0.0.1:1"}
    code, report, _ = doctor(tmp_path, JUNE_SANDBOX="docker", **bogus)
    assert_contract(code, report)
    checks = by_name(report)
    assert code == 1 and not checks["docker-engine"]["ok"] and checks["docker-engine"]["required"]
    assert "tcp://127.0.0.1:1" in checks["docker-engine"]["detail"] and "DOCKER_HOST" in checks["docker-engine"]["fix"]
    assert checks["sandbox-image"]["required"] and not checks["sandbox-image"]["ok"]

    _, auto, _ = doctor(tmp_path, **bogus)  # JUNE_SANDBOX=auto: the process sandbox takes over
    auto_checks = by_name(auto)
    assert not auto_checks["docker-engine"]["ok"] and not auto_checks["docker-engine"]["required"]
    assert auto_checks["process-sandbox"]["required"]
    assert "what evaluations use here" in auto_checks["process-sandbox"]["detail"]

    _, healthy, _ = doctor(tmp_path, JUNE_SANDBOX="docker")
    assert by_name(healthy)["docker-engine"]["ok"] and by_name(healthy)["sandbox-image"]["ok"]


def test_a_bogus_postgres_url_fails_without_showing_its_password(tmp_path) -> None:
    password = "doctor-pw-5ecret"
    url = f"postgresql://june:{password}@127.0.0.1:{free_port()}/june"
    code, report, output = doctor(tmp_path, JUNE_POSTGRES_URL=url)
    assert_contract(code, report)
    check = by_name(report)["postgres"]
    assert code == 1 and not check["ok"] and check["required"]
    assert "cannot connect" in check["detail"] and "june:***@127.0.0.1" in check["detail"]
    assert password not in output

    code, report, output = doctor(tmp_path, JUNE_POSTGRES_URL="mysql://june:pw@db/june")
    assert code == 1 and "must look like postgresql://" in by_name(report)["postgres"]["detail"]


def test_postgres_reachable_then_migrated(tmp_path) -> None:
    with fresh_database("june_doctor") as url:
        code, report, output = doctor(tmp_path, JUNE_POSTGRES_URL=url)
        assert_contract(code, report)
        check = by_name(report)["postgres"]
        assert code == 1 and not check["ok"] and "no Dagster schema" in check["detail"]
        assert "dagster instance migrate" in check["fix"]

        from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

        driver_url = url.replace("postgresql://", "postgresql+psycopg2://", 1)  # June's driver (deploy extra)
        for storage in (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage):
            storage(driver_url)  # what the webserver and daemon do on first start: create and stamp the schema
        code, report, output = doctor(tmp_path, JUNE_POSTGRES_URL=url)
        check = by_name(report)["postgres"]
        assert check["ok"] and "Dagster schema at head" in check["detail"], check
        assert_contract(code, report)
        password = url.split(":")[2].split("@")[0]
        assert f":{password}@" not in output


@pytest.mark.slow
def test_llm_endpoint_and_bot_tokens_without_printing_secrets(tmp_path) -> None:
    telegram = "123456789:AAF-doctor_test_token_not_real_0123456"
    discord = "not-a-discord-token"
    server = LlamaServer(free_port(), tmp_path / "server.log", api_key=API_KEY).start()
    try:
        env = {"JUNE_LLM_BACKEND": "openai,llama_cpp", "JUNE_OPENAI_BASE_URL": server.url,
               "TELEGRAM_BOT_TOKEN": telegram, "DISCORD_BOT_TOKEN": discord}
        code, report, output = doctor(tmp_path, JUNE_OPENAI_API_KEY=API_KEY, **env)
        assert_contract(code, report)
        checks = by_name(report)
        assert checks["openai-endpoint"]["ok"], checks["openai-endpoint"]
        assert checks["telegram-token"]["ok"] and checks["telegram-token"]["required"]
        assert not checks["discord-token"]["ok"] and "does not look like" in checks["discord-token"]["detail"]
        assert checks["model:stt"]["required"] and checks["model:tts"]["required"]  # a bot needs the voice models
        assert code == 1  # the malformed Discord token
        for secret in (telegram, discord, API_KEY):
            assert secret not in output

        code, report, output = doctor(tmp_path, JUNE_OPENAI_API_KEY="wrong-key-for-doctor", **env)
        assert "refuses the API key" in by_name(report)["openai-endpoint"]["detail"]
        assert "wrong-key-for-doctor" not in output
    finally:
        server.stop()
    code, report, _ = doctor(tmp_path, JUNE_LLM_BACKEND="openai", JUNE_OPENAI_BASE_URL=server.url)
    assert code == 1 and "ConnectError" in by_name(report)["openai-endpoint"]["detail"]


def test_requesting_serving_on_a_cpu_host_makes_the_gpu_required(tmp_path) -> None:
    code, report, _ = doctor(tmp_path, "--feature", "serving")
    assert_contract(code, report)
    gpu = by_name(report)["gpu"]
    assert gpu["required"]
    if not gpu["ok"]:  # this machine has no GPU: serving cannot work here, and doctor says so
        assert code == 1 and "NVIDIA" in gpu["fix"]
    bad = subprocess.run([str(JUNE), "doctor", "--feature", "gpu-farm"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "gpu-farm" in bad.stderr


def test_features_come_from_the_environment() -> None:
    assert Features.from_env({}) == Features()
    configured = Features.from_env({"JUNE_TRTLLM_RUNNER": "local", "JUNE_LLM_BACKEND": "triton,llama_cpp",
                                    "DISCORD_BOT_TOKEN": "x", "JUNE_POSTGRES_URL": "postgresql://h/db"})
    assert configured.serving and configured.trtllm_runner == "local" and configured.triton_configured
    assert configured.bots == ("discord",) and configured.postgres
    assert Features.from_env({}, ["telegram"]).bots == ("telegram",)
    broken = Features.from_env({"JUNE_LLM_BACKEND": "gpt5"})
    assert broken.llm_backends == () and "JUNE_LLM_BACKEND='gpt5'" in broken.llm_error
    with pytest.raises(ValueError, match="unknown feature"):
        Features.from_env({}, ["gpu-farm"])
