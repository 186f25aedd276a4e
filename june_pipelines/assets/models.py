"""`model_weights`: verified weights of a registered model (hub at a pinned revision, or a local import).

Partitioned by model id (the same dynamic `models` partitions as the evaluation assets).
"""


from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from june_pipelines.assets.benchmarks import model_partitions
from june_pipelines.registry import get_model
from june_pipelines.retries import SERVING, fail_fast_on_bad_input
from june_pipelines.serving.resources import ModelStoreResource

GROUP = "serving"


def _digest(parts) -> str:
    import hashlib

    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


class WeightsConfig(dg.Config):
    import_dir: str | None = Field(
        default=None, description="Import from this local directory instead of the hub (air-gapped sites)"
    )
    full_verify: bool = Field(default=True, description="Re-hash every file of a cached entry (False: sizes only)")


@dg.asset(partitions_def=model_partitions, group_name=GROUP, kinds={"huggingface"},
          retry_policy=SERVING)
@fail_fast_on_bad_input
def model_weights(
    context: dg.AssetExecutionContext, config: WeightsConfig, model_store: ModelStoreResource
) -> dg.MaterializeResult:
    """Weights of a registered model, with a sha256 manifest written and verified."""
    from june_pipelines.serving.weights import ensure_weights

    spec = get_model(context.partition_key)  # only registered models: anything else raises
    weights = ensure_weights(
        spec,
        model_store.path(),
        offline=model_store.offline,
        import_dir=Path(config.import_dir) if config.import_dir else None,
        token=model_store.hf_token,
        endpoint=model_store.hub_endpoint,
        full_verify=config.full_verify,
        log=context.log.info,
    )
    meta: dict[str, Any] = weights.metadata()
    return dg.MaterializeResult(
        metadata={
            **{k: v for k, v in meta.items() if k != "path"},
            "path": dg.MetadataValue.path(str(weights.path)),
            "hub_repo": spec.hub_repo or "",
            "licence": spec.licence or "unknown",
            "files": dg.MetadataValue.md("\n".join(f"- `{f.path}` ({f.size} B)" for f in weights.manifest.files[:50])),
        },
        data_version=dg.DataVersion(_digest(f.sha256 for f in weights.manifest.files)),
    )


defs = dg.Definitions(assets=[model_weights])
