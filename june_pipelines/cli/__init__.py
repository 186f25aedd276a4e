"""The `june` command line. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import os

import click

from june_pipelines.cli.bench import bench_group
from june_pipelines.cli.bot import bot_group
from june_pipelines.cli.deploy import deploy_group
from june_pipelines.cli.doctor import doctor
from june_pipelines.cli.engine import engine_group
from june_pipelines.cli.eval import eval_group
from june_pipelines.cli.runs import demo, ui
from june_pipelines.cli.sandbox import sandbox_group
from june_pipelines.cli.triton import triton_group
from june_pipelines.cli.voice import voice_group
from june_pipelines.progress import BAR_ENV


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """June: run a self-hosted LLM's whole life on Dagster.

    Evaluate models (pass@k on HumanEval/MBPP in sandboxes), build and serve them
    (TensorRT-LLM, Triton), and talk to them (voice bots).
    """
    # Long work draws progress bars on the terminal; runs launched from the UI only log per batch.
    os.environ.setdefault(BAR_ENV, "1")


for command in (demo, eval_group, ui, bench_group, sandbox_group, engine_group, triton_group, voice_group, bot_group,
                doctor, deploy_group):
    main.add_command(command)
