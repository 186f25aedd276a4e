"""`june triton ...`: generate and check a model repository, manage a running server, send a prompt."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click


@click.group("triton")
def triton_group() -> None:
    """Triton model repositories and servers (mirrors the triton_* assets)."""


@triton_group.command("repo")
@click.argument("model")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Repository root (other models' entries are kept)")
@click.option("--layout", type=click.Choice(["inflight", "llmapi"]), default="inflight", show_default=True)
@click.option("--tokenizer", type=click.Path(path_type=Path, exists=True), help="Directory with tokenizer.json or a GGUF (default: the model's verified weights)")
@click.option("--engine-dir", default=None, help="Engine directory as the server sees it (default /engines/<model>/engine)")
@click.option("--max-batch-size", type=int, default=8, show_default=True)
@click.option("--stream/--no-stream", "decoupled", default=True, show_default=True, help="Decoupled (streaming) models")
@click.option("--bls", is_flag=True, help="Also write the tensorrt_llm_bls model")
@click.option("--backend", type=click.Choice(["tensorrtllm", "python"]), default="tensorrtllm", show_default=True)
@click.option("--prefix/--no-prefix", default=True, show_default=True, help="Prefix model names with '<served name>-'")
def repo_cmd(model, out, layout, tokenizer, engine_dir, max_batch_size, decoupled, bls, backend, prefix) -> None:
    """Write MODEL's Triton entries into OUT and validate every config.pbtxt."""
    from june_pipelines.registry import get_model
    from june_pipelines.serving.triton_repo import TritonRepoSettings, generate

    spec = get_model(model)
    if layout == "inflight" and tokenizer is None:
        from june_pipelines.serving.resources import ModelStoreResource
        from june_pipelines.assets.engines import _weights_dir

        import dagster as dg

        try:
            tokenizer = _weights_dir(ModelStoreResource(), spec)
        except dg.Failure as exc:
            raise click.ClickException(f"{exc.description} (or pass --tokenizer DIR)") from exc
    settings = TritonRepoSettings(
        layout=layout,
        name_prefix=f"{spec.name_for_server}-" if prefix else "",
        max_batch_size=max_batch_size,
        decoupled=decoupled,
        engine_dir=engine_dir or f"/engines/{spec.id}/engine",
        triton_backend=backend,
        bls=bls,
        hf_model=f"/weights/{spec.id}",
    )
    repo = generate(out, settings, tokenizer_source=tokenizer)
    click.echo(f"wrote {', '.join(repo.models)} into {repo.root} ({len(repo.configs)} configs, all valid)")
    click.echo(f"clients call: {settings.entry_model}")


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


@triton_group.command("status")
@click.option("--url", default="127.0.0.1:8000", show_default=True, help="HTTP host:port")
def status_cmd(url: str) -> None:
    """Readiness and the repository index."""
    from june_pipelines.serving.triton_deploy import TritonRepositoryClient

    api = TritonRepositoryClient(url)
    click.echo(f"live={api.live()} ready={api.ready()}")
    for m in api.index():
        click.echo(f"{m.name:40s} {m.state or 'UNLOADED':12s} {m.reason}")


@triton_group.command("deploy")
@click.argument("name")
@click.option("--url", default="127.0.0.1:8000", show_default=True)
@click.option("--unload", multiple=True, help="Models to unload (switch); repeatable")
@click.option("--keep-serving", is_flag=True, help="Load the new model before unloading the old ones")
def deploy_cmd(name: str, url: str, unload: tuple[str, ...], keep_serving: bool) -> None:
    """Load NAME (explicit model control), unloading --unload models."""
    from june_pipelines.serving.triton_deploy import TritonRepositoryClient

    state = TritonRepositoryClient(url).deploy(name, unload=unload, unload_first=not keep_serving)
    click.echo(json.dumps(state.metadata(), indent=2))


@triton_group.command("unload")
@click.argument("name")
@click.option("--url", default="127.0.0.1:8000", show_default=True)
def unload_cmd(name: str, url: str) -> None:
    """Unload NAME and the models it depends on."""
    from june_pipelines.serving.triton_deploy import TritonRepositoryClient

    TritonRepositoryClient(url).unload(name)
    click.echo(f"unloading {name}")


@triton_group.command("generate")
@click.argument("name")
@click.argument("prompt")
@click.option("--url", default="127.0.0.1:8001", show_default=True, help="gRPC host:port (HTTP with --http)")
@click.option("--http", "use_http", is_flag=True, help="Use the HTTP /generate endpoint")
@click.option("--stream", is_flag=True)
@click.option("--chat", "chat_template", default=None, help="Wrap PROMPT as a user message with this chat template (chatml, llama3)")
@click.option("--max-tokens", type=int, default=128, show_default=True)
@click.option("--no-decoupled", is_flag=True, help="The model is not decoupled (plain unary gRPC)")
def generate_cmd(name, prompt, url, use_http, stream, chat_template, max_tokens, no_decoupled) -> None:
    """Send PROMPT to the Triton model NAME (e.g. smollm2-ensemble)."""
    from june_pipelines.inference.base import ChatMessage, SamplingParams
    from june_pipelines.inference.triton import TritonLLMClient, render_chat

    client = TritonLLMClient(name, url, protocol="http" if use_http else "grpc", decoupled=not no_decoupled)
    text = render_chat([ChatMessage("user", prompt)], chat_template) if chat_template else prompt
    params = SamplingParams(max_tokens=max_tokens)
    if stream:
        for piece in client.stream_complete(text, params):
            click.echo(piece, nl=False)
        click.echo()
    else:
        result = client.complete(text, params)
        click.echo(result.text)
        click.echo(f"[{result.completion_tokens} tokens, {result.latency_s:.2f} s, {result.finish_reason}]", err=True)


@triton_group.command("serve-local")
@click.argument("root", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@click.option("--load", "load", multiple=True, help="Models to load at start")
def serve_local_cmd(root: Path, http_port: int, grpc_port: int, load: tuple[str, ...]) -> None:
    """Run the CPU tritonserver from nvidia-pytriton on ROOT (python-backend models only; development)."""
    import time

    from june_pipelines.serving.triton_local import LocalTritonServer

    server = LocalTritonServer(root.resolve(), http_port=http_port, grpc_port=grpc_port, load_models=load)
    server.start()
    click.echo(f"tritonserver on http {server.http_url}, grpc {server.grpc_url}; log {server.log_path}; Ctrl-C stops")
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@triton_group.command("server-command")
@click.option("--repository", type=click.Path(path_type=Path), required=True)
@click.option("--engines", type=click.Path(path_type=Path), required=True, help="Engines root (mounted at /engines)")
@click.option("--image", default=None, help="Default: the TensorRT-LLM Triton image")
def server_command_cmd(repository: Path, engines: Path, image: str | None) -> None:
    """Print the docker command that runs Triton with the TensorRT-LLM backend on a GPU host."""
    from june_pipelines.serving.trtllm import DEFAULT_TRITON_IMAGE, triton_container

    spec = triton_container(image or DEFAULT_TRITON_IMAGE, repository.resolve(), engines.resolve())
    click.echo(shlex.join(spec.docker_cli()))
