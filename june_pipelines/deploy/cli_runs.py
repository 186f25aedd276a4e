"""Runs started from the command line that the UI treats like runs it launched itself.

`JobDefinition.execute_in_process` records a run without a code-location origin: the UI cannot
re-execute it and the job's page never lists it. Here the CLI creates the run as the webserver does
(with the origin of the workspace's code location `june` and a reconstructable code origin), then
executes it in this process with the in-process executor, so the terminal keeps its progress bars.
The run lands on the instance's storage (SQLite or PostgreSQL) like any other; its tags say who
started it. Queue limits do not apply to it (it never enters the queue); the `gpu` pool does.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from june_pipelines.deploy.services import DEFINITIONS_MODULE, LOCATION_NAME
from june_pipelines.paths import PROJECT_ROOT

if TYPE_CHECKING:
    import dagster as dg
    from dagster._core.remote_origin import RemoteJobOrigin

REPOSITORY_NAME = "__repository__"  # what Dagster names the repository of a Definitions object
STARTED_BY_TAG = "june/started_by"
IN_PROCESS: dict[str, Any] = {"execution": {"config": {"in_process": {}}}}


def remote_job_origin(job_name: str) -> RemoteJobOrigin:
    """The origin a run of `job_name` gets when the workspace's code location launches it."""
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=str(PROJECT_ROOT)
    )
    location = ManagedGrpcPythonEnvCodeLocationOrigin(loadable_target_origin=target, location_name=LOCATION_NAME)
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)


def execute_job_run(
    instance: dg.DagsterInstance,
    job_name: str,
    run_config: Mapping[str, Any] | None = None,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.DagsterRun:
    """Create a run of the code location's `job_name` and execute it here; returns the finished run."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import execute_run
    from dagster._core.execution.execute_in_process import merge_run_tags
    from dagster._core.storage.dagster_run import DagsterRunStatus

    recon_job = ReconstructableRepository.for_module(
        DEFINITIONS_MODULE, "defs", working_directory=str(PROJECT_ROOT)
    ).get_reconstructable_job(job_name)
    job_def = recon_job.get_definition()
    config = {**IN_PROCESS, **(run_config or {})}
    run_tags = merge_run_tags(
        job_def=job_def, partition_key=partition_key, tags={STARTED_BY_TAG: "cli", **(tags or {})},
        asset_selection=None, instance=instance, run_config=config,
    )
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=config,
        tags=run_tags,
        status=DagsterRunStatus.NOT_STARTED,
        remote_job_origin=remote_job_origin(job_name),
        job_code_origin=recon_job.get_python_origin(),
    )
    execute_run(recon_job, run, instance)
    finished = instance.get_run_by_id(run.run_id)
    assert finished is not None
    return finished
