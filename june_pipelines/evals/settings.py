"""The evaluation domain's settings from the environment, read in this one place.

Library code takes explicit arguments; the assets and the CLI (the edge) read these settings and
pass them on. `source_for(benchmark)` is the benchmark's data when no `source` was given:
JUNE_MBPP_SOURCE, JUNE_HUMANEVALPLUS_SOURCE or JUNE_MBPPPLUS_SOURCE, else the hub id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

SOURCE_ENV = {"mbpp": "JUNE_MBPP_SOURCE", "humanevalplus": "JUNE_HUMANEVALPLUS_SOURCE",
              "mbppplus": "JUNE_MBPPPLUS_SOURCE"}
REGRESSION_SEVERITY_ENV = "JUNE_REGRESSION_GATE"

Severity = Literal["error", "warn"]


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class EvalSettings:
    sources: Mapping[str, str] = field(default_factory=dict)
    regression_severity: Severity = "error"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EvalSettings:
        env = os.environ if environ is None else environ
        severity = env.get(REGRESSION_SEVERITY_ENV, "error").strip().lower() or "error"
        if severity not in ("error", "warn"):
            raise SettingsError(f"{REGRESSION_SEVERITY_ENV}={severity!r}: expected error or warn")
        sources = {benchmark: env[name] for benchmark, name in SOURCE_ENV.items() if env.get(name)}
        return cls(sources, severity)  # type: ignore[arg-type]  # checked just above

    def source_for(self, benchmark: str, given: str | None = None) -> str | None:
        """`given` if set, else the benchmark's environment setting; None means the default (the hub)."""
        return given or self.sources.get(benchmark)
