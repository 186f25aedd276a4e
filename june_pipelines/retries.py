"""Retry policies, defined once: steps that call models, servers or the Docker engine retry with
backoff; failures that will happen again (bad input or configuration) fail at once.

Dagster retries a step with a `RetryPolicy` on any exception except `dg.Failure(allow_retries=False)`.
So a step that has a policy either raises such a Failure where it knows the cause is deterministic,
or is wrapped in `fail_fast_on_bad_input`, which turns June's typed input errors (the `ValueError`
subclasses every June module raises for bad input: unknown model, bad dataset, bad settings; a
missing upstream result; no GPU on this host) into one. A failed asset check is a result, not an
exception, so it is never retried either.

Runs whose worker is lost (killed, its host gone) are retried by the instance (`run_retries` in
dagster.yaml, with `retry_on_asset_or_op_failure: false`, so a run is never re-run for a step that
already failed after its own retries).

Delays: Dagster's EXPONENTIAL backoff waits `(2**attempt - 1) * delay`, and PLUS_MINUS jitter moves
that by up to +-delay, so that many runs hitting one restarted server do not retry in lockstep.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

import dagster as dg

F = TypeVar("F", bound=Callable[..., Any])

# Completions and agentic turns: an inference server that is busy, restarting or briefly away.
# Completions are journaled per sample, so a retry only generates what is missing. ~5, 15, 35 s.
MODEL_CALLS = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Sandboxed executions: the Docker engine restarting, a worker pool that could not start. ~5, 15 s.
SANDBOX = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Serving steps that talk to a server or the hub: weights download, Triton load, trtllm-serve
# start. A model load can take minutes, so the waits are longer. ~20, 60 s.
SERVING = dg.RetryPolicy(max_retries=2, delay=20, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Checkpoint conversion and engine builds: long and mostly deterministic; one retry covers a
# container or engine that died under the build, after a pause.
BUILD = dg.RetryPolicy(max_retries=1, delay=60)

# A handed-over chat turn: the user is waiting, so short waits. ~2, 6 s.
LIVE_TURN = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def is_deterministic(exc: BaseException) -> bool:
    """True for failures that a retry would only repeat: June's typed input and configuration errors."""
    from june_pipelines.evals.store import MissingResultError
    from june_pipelines.serving.trtllm import GpuUnavailable

    if isinstance(exc, dg.Failure):
        return not exc.allow_retries
    if isinstance(exc, MissingResultError | GpuUnavailable):
        return True
    # June's own ValueError subclasses (RegistryError, DatasetError, LLMConfigError, ...) mean bad
    # input. A library's ValueError can be transient (a truncated JSON reply), so it is not listed.
    return isinstance(exc, ValueError) and type(exc).__module__.startswith("june_pipelines.")


def fail_fast_on_bad_input(fn: F) -> F:
    """Decorate an asset or op body (below `@dg.asset`) so its deterministic errors are not retried."""
    if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn):
        raise TypeError(f"fail_fast_on_bad_input wraps plain functions, not {fn.__name__!r}")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except dg.Failure:
            raise
        except Exception as exc:
            if is_deterministic(exc):
                raise dg.Failure(f"{type(exc).__name__}: {exc}", allow_retries=False) from exc
            raise

    return cast(F, wrapper)  # functools.wraps keeps the signature that Dagster reads
