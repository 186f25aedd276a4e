"""A small client for the webserver's GraphQL API: what the UI's buttons do, for tests and scripts.

Launching a job here goes through the same mutation as the UI's Launchpad: the run is queued and the
daemon starts it within dagster.yaml's limits, with the instance's run launcher.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

REPOSITORY = {"repositoryLocationName": "june", "repositoryName": "__repository__"}
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")

_RESULT = """
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on PresetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on UnauthorizedError { message }
    ... on NoModeProvidedError { message }
"""


class GraphQLError(RuntimeError):
    """The API answered with an error (its message)."""


class DagsterUI:
    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def query(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.post(f"{self.url}/graphql", json={"query": document, "variables": variables or {}})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError("; ".join(e.get("message", str(e)) for e in body["errors"]))
        return body["data"]

    @staticmethod
    def _expect(result: dict[str, Any], typename: str) -> dict[str, Any]:
        """`result` if it is a `typename`; else the error it is, raised as a GraphQLError."""
        if result["__typename"] != typename:
            raise GraphQLError(f"{result['__typename']}: {result.get('message', '')}")
        return result

    @staticmethod
    def _launched(result: dict[str, Any]) -> str:
        if result["__typename"] != "LaunchRunSuccess":
            detail = result.get("message") or json.dumps(result.get("errors") or result)
            raise GraphQLError(f"{result['__typename']}: {detail}")
        return str(result["run"]["runId"])

    def launch(self, job: str, run_config: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> str:
        """Launch `job` as the Launchpad does; returns the queued run's id."""
        document = f"""mutation Launch($params: ExecutionParams!) {{
            launchPipelineExecution(executionParams: $params) {{ {_RESULT} }} }}"""
        params = {
            "selector": {**REPOSITORY, "pipelineName": job},
            "runConfigData": run_config,
            "mode": "default",
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        return self._launched(self.query(document, {"params": params})["launchPipelineExecution"])

    def reexecute(self, parent_run_id: str, strategy: str = "ALL_STEPS") -> str:
        """"Re-execute all" (ALL_STEPS) or "from failure" (FROM_FAILURE) of a finished run."""
        document = f"""mutation Reexecute($params: ReexecutionParams!) {{
            launchPipelineReexecution(reexecutionParams: $params) {{ {_RESULT} }} }}"""
        params = {"parentRunId": parent_run_id, "strategy": strategy}
        return self._launched(self.query(document, {"params": params})["launchPipelineReexecution"])

    def job_runs(self, job: str, limit: int = 50) -> list[dict[str, Any]]:
        """The runs the job's page lists (filtered by the code location, as the UI does)."""
        document = """query JobRuns($params: PipelineSelector!, $limit: Int) {
            pipelineOrError(params: $params) {
                __typename
                ... on Pipeline { runs(limit: $limit) { runId status tags { key value } } }
                ... on PythonError { message }
            } }"""
        variables = {"params": {**REPOSITORY, "pipelineName": job}, "limit": limit}
        result = self.query(document, variables)["pipelineOrError"]
        return list(self._expect(result, "Pipeline")["runs"])

    def run(self, run_id: str) -> dict[str, Any]:
        document = """query Run($runId: ID!) { runOrError(runId: $runId) {
            __typename ... on Run { runId status jobName tags { key value } }
            ... on RunNotFoundError { message } ... on PythonError { message } } }"""
        result = self.query(document, {"runId": run_id})["runOrError"]
        return dict(self._expect(result, "Run"))

    def wait_for_run(self, run_id: str, timeout_s: float = 600.0, poll_s: float = 1.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.run(run_id)
            if run["status"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout_s:.0f}s")
            time.sleep(poll_s)

    def start_schedule(self, name: str) -> str:
        """Turn a schedule on, as its toggle in the UI does; returns its new status."""
        document = """mutation Start($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
            __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }"""
        result = self.query(document, {"selector": {**REPOSITORY, "scheduleName": name}})["startSchedule"]
        return str(self._expect(result, "ScheduleStateResult")["scheduleState"]["status"])

    def stop_schedule(self, name: str) -> str:
        """Turn a schedule off (its toggle in the UI); returns its new status."""
        lookup = """query Schedule($selector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $selector) {
            __typename ... on Schedule { scheduleState { id } } ... on PythonError { message } } }"""
        found = self.query(lookup, {"selector": {**REPOSITORY, "scheduleName": name}})["scheduleOrError"]
        self._expect(found, "Schedule")
        document = """mutation Stop($id: String!) { stopRunningSchedule(id: $id) {
            __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }"""
        result = self.query(document, {"id": found["scheduleState"]["id"]})["stopRunningSchedule"]
        return str(self._expect(result, "ScheduleStateResult")["scheduleState"]["status"])
