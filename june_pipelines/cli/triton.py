"""`june triton ...`: generate and check a model repository, manage a running server, send a prompt.

`repo` runs the same step as the triton_model_repository asset (registry settings included). Every
option is checked before any work starts: bad input exits with 2 and a one-line error naming the
option; a server that cannot be reached exits with 1 and one line.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from june_pipelines.registry import ModelSpec
from june_pipelines.serving.cli_support import PORT, POSITIVE, cli_errors, given, host_port, registered_model


@click.group("triton")
def triton_group() -> None:
    """Triton model repositories and servers (the triton_* assets)."""


@triton_group.command("repo")
@click.argument("model", callback=registered_model)
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Repository root (other models' entries are kept)")
@click.option(
    "--layout", type=click.Choice(["inflight", "llmapi"]), default=None, help="Default: the registry's, else inflight"
)
@click.option("--tokenizer", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Directory with tokenizer.json or a GGUF (default: the model's verified weights)")
@click.option(
    "--engine-dir", default=None, help="Engine directory as the server sees it (default /engines/<model>/engine)"
)
@click.option("--max-batch-size", type=POSITIVE, default=None, help="Default: the registry's triton.repository, else 8")
@click.option("--stream/--no-stream", "decoupled", default=None, help="Decoupled (streaming) models (default: on)")
@click.option("--bls/--no-bls", default=None, help="Also write the tensorrt_llm_bls model")
@click.option(
    "--backend", type=click.Choice(["tensorrtllm", "python"]), default=None, help="tensorrt_llm model backend"
)
@click.option("--models-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Copy of TensorRT-LLM's triton_backend/all_models (llmapi layout, python backend)")
@click.option("--image", default=None, help="Image to read /app/all_models from (default: the pinned Triton image)")
@click.option("--prefix/--no-prefix", default=True, show_default=True, help="Prefix model names with '<served name>-'")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None, help="Model store")
def repo_cmd(model: ModelSpec, out: Path, layout: str | None, tokenizer: Path | None, engine_dir: str | None,
             max_batch_size: int | None, decoupled: bool | None, bls: bool | None, backend: str | None,
             models_dir: Path | None, image: str | None, prefix: bool, cache_dir: Path | None) -> None:
    """Write MODEL's Triton entries into OUT and validate every config.pbtxt."""
    from june_pipelines.serving import steps
    from june_pipelines.serving.errors import WeightsMissing
    from june_pipelines.serving.resources import DockerTensorRTLLMResource, ModelStoreResource, TritonResource
    from june_pipelines.serving.versions import DEFAULT_SERVE_IMAGE

    trt = DockerTensorRTLLMResource(serve_image=image or DEFAULT_SERVE_IMAGE)
    store = ModelStoreResource(cache_dir=str(cache_dir) if cache_dir else None)
    model_layout = trt.layout(model, store, TritonResource(repository_dir=str(out)))
    overrides = given(layout=layout, max_batch_size=max_batch_size, decoupled=decoupled, bls=bls,
                      triton_backend=backend, engine_dir=engine_dir, name_prefix=None if prefix else "")
    with cli_errors():
        if tokenizer is None and (layout or steps.repository_settings(model_layout).layout) == "inflight":
            try:
                tokenizer = model_layout.verified_weights()
            except WeightsMissing as exc:
                raise click.BadParameter(f"{exc} (or pass --tokenizer DIR)", param_hint="'--tokenizer'") from None
        repo = steps.generate_repository(model_layout, overrides, models_dir, trt.serve_image, tokenizer)
    click.echo(f"wrote {', '.join(repo.models)} into {repo.root} ({len(repo.configs)} configs, all valid)")
    click.echo(f"clients call: {repo.settings.entry_model}")


@triton_group.command("validate")
@click.argument("root", type=click.Path(path_type=Path, exists=True, file_okay=False))
def validate_cmd(root: Path) -> None:
    """Parse every config.pbtxt under ROOT with Triton's ModelConfig schema."""
    from june_pipelines.serving.triton_repo import validate_repository

    problems = validate_repository(root)
    count = len(list(root.glob("*/config.pbtxt")))
    for name, problem in problems.items():
        click.echo(f"FAIL {name}: {problem}", err=True)
    click.echo(f"{count - len(problems)}/{count} configs valid")
    if problems or not count:
        raise SystemExit(1)


URL = click.option("--url", default="127.0.0.1:8000", show_default=True, callback=host_port, help="HTTP host:port")


@triton_group.command("status")
@URL
def status_cmd(url: str) -> None:
    """Readiness and the repository index."""
    from june_pipelines.serving.triton_deploy import TritonRepositoryClient

    api = TritonRepositoryClient(url)
    click.echo(f"live={api.live()} ready={api.ready()}")
    with cli_errors():
        models = api.index()
    for m in models:
        click.echo(f"{m.name:40s} {m.state or 'UNLOADED':12s} {m.reason}")


@triton_group.command("deploy")
@click.argument("name")
@URL
@click.option("--unload", multiple=True, help="Models to unload (switch); repeatable")
@click.option("--keep-serving", is_flag=True, help="Load the new model before unloading the old ones")
def deploy_cmd(name: str, url: str, unload: tuple[str, ...], keep_serving: bool) -> None:
    """Load NAME (explicit model control), unloading --unload models."""
    from june_pipelines.serving.triton_deploy import TritonRepositoryClient

    with cli_errors():
        state = TritonRepositoryClient(url).deploy(name, unload=unload, unload_first=not keep_serving)
    click.echo(json.dumps(state.metadata(), indent=2))


@triton_group.command("unload")
@click.argument("name")
@URL
def unload_cmd(name: str, url: str) -> None:
    """Unload NAME and the models it depends on."""
    from june_pipelines.serving.triton_deploy import TritonRepositoryClient

    with cli_errors():
        TritonRepositoryClient(url).unload(name)
    click.echo(f"unloading {name}")


@triton_group.command("generate")
@click.argument("name")
@click.argument("prompt")
@click.option("--url", default="127.0.0.1:8001", show_default=True, callback=host_port,
              help="gRPC host:port (HTTP with --http)")
@click.option("--http", "use_http", is_flag=True, help="Use the HTTP /generate endpoint")
@click.option("--stream", is_flag=True)
@click.option("--layout", type=click.Choice(["inflight", "llmapi"]), default="inflight", show_default=True,
              help="Request shape: the ensemble's, or the llmapi model's")
@click.option(
    "--chat",
    "chat_template",
    default=None,
    help="Wrap PROMPT as a user message with this chat template (chatml, llama3)",
)
@click.option("--max-tokens", type=POSITIVE, default=128, show_default=True)
@click.option("--no-decoupled", is_flag=True, help="The model is not decoupled (plain unary gRPC)")
def generate_cmd(name: str, prompt: str, url: str, use_http: bool, stream: bool, layout: str, chat_template: str | None,
                 max_tokens: int, no_decoupled: bool) -> None:
    """Send PROMPT to the Triton model NAME (e.g. smollm2-ensemble)."""
    from june_pipelines.inference.base import ChatMessage, SamplingParams
    from june_pipelines.inference.triton import TritonLLMClient, render_chat

    if stream and no_decoupled:
        raise click.BadParameter("--stream needs a decoupled model", param_hint="'--stream', '--no-decoupled'")
    client = TritonLLMClient(
        name,
        url,
        protocol="http" if use_http else "grpc",
        layout="llmapi" if layout == "llmapi" else "inflight",
        decoupled=not no_decoupled,
    )
    with cli_errors():
        try:
            text = render_chat([ChatMessage("user", prompt)], chat_template) if chat_template else prompt
        except Exception as exc:  # a bad Jinja template
            raise click.BadParameter(f"not a usable chat template: {exc}", param_hint="'--chat'") from None
        params = SamplingParams(max_tokens=max_tokens)
        if stream:
            for piece in client.stream_complete(text, params):
                click.echo(piece, nl=False)
            click.echo()
        else:
            result = client.complete(text, params)
            click.echo(result.text)
            click.echo(
                f"[{result.completion_tokens} tokens, {result.latency_s:.2f} s, {result.finish_reason}]", err=True
            )


@triton_group.command("serve-local")
@click.argument("root", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--http-port", type=PORT, default=8000, show_default=True)
@click.option("--grpc-port", type=PORT, default=8001, show_default=True)
@click.option("--load", "load", multiple=True, help="Models to load at start")
def serve_local_cmd(root: Path, http_port: int, grpc_port: int, load: tuple[str, ...]) -> None:
    """Run the CPU tritonserver from nvidia-pytriton on ROOT (python-backend models only; development)."""
    import time

    from june_pipelines.serving.triton_local import LocalTritonError, LocalTritonServer

    if http_port == grpc_port:
        raise click.BadParameter("HTTP and gRPC need different ports", param_hint="'--http-port', '--grpc-port'")
    server = LocalTritonServer(root.resolve(), http_port=http_port, grpc_port=grpc_port, load_models=load)
    try:
        server.start()
    except LocalTritonError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    click.echo(f"tritonserver on http {server.http_url}, grpc {server.grpc_url}; log {server.log_path}; Ctrl-C stops")
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@triton_group.command("server-command")
@click.option("--repository", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option(
    "--engines",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Engines root (mounted at /engines)",
)
@click.option("--weights", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Model store (mounted at /weights; default: $JUNE_MODEL_CACHE or ~/.cache/june/models)")
@click.option("--image", default=None, help="Default: the pinned TensorRT-LLM Triton image")
def server_command_cmd(repository: Path, engines: Path, weights: Path | None, image: str | None) -> None:
    """Print the docker command that runs Triton with the TensorRT-LLM backend on a GPU host."""
    from june_pipelines.serving.trtllm import DEFAULT_TRITON_IMAGE, triton_container
    from june_pipelines.serving.weights import default_cache_dir

    spec = triton_container(
        image or DEFAULT_TRITON_IMAGE,
        repository.resolve(),
        engines.resolve(),
        (weights or default_cache_dir()).resolve(),
    )
    click.echo(shlex.join(spec.docker_cli()))
