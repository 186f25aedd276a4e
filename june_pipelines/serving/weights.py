"""Model weights: download from the hub at a pinned revision, import from a local directory, verify.

Layout of the store (`cache_dir`, default `$JUNE_MODEL_CACHE` or `~/.cache/june/models`):

    <cache_dir>/<model id>/<revision>/           the files, exactly as listed in the manifest
    <cache_dir>/<model id>/<revision>/june-manifest.json
    <cache_dir>/<model id>/.<revision>.partial/  a download in progress (kept only when it holds
                                                 completed files, so the next attempt resumes)

A revision directory appears only once every file is in place and its sha256 manifest has been
written and re-read, so a failed or interrupted download never leaves a half-filled entry behind.
Only models in the registry can be fetched: callers pass a `ModelSpec` from `registry.get_model`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from june_pipelines.registry import ModelSpec

MANIFEST_NAME = "june-manifest.json"
CACHE_ENV = "JUNE_MODEL_CACHE"
# Directories a hub download leaves for its own bookkeeping; never part of the model.
_SKIP_DIRS = {".cache", ".git", "__pycache__"}

Log = Callable[[str], None]


class WeightsError(RuntimeError):
    """Weights are missing, unauthorised, unreachable or corrupt; the message says which and what to do."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    model_id: str
    revision: str
    source: str  # "hub:<repo>" or "local:<dir>"
    created_utc: str
    files: tuple[FileEntry, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        doc = asdict(self)
        doc["files"] = [asdict(f) for f in self.files]
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        doc = json.loads(text)
        files = tuple(FileEntry(**f) for f in doc.pop("files"))
        return cls(files=files, **doc)


@dataclass(frozen=True)
class Weights:
    """Verified weights on local disk."""

    model_id: str
    path: Path
    manifest: Manifest
    reused: bool  # True when an existing verified entry was used, nothing fetched or copied

    def metadata(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "revision": self.manifest.revision,
            "source": self.manifest.source,
            "file_count": len(self.manifest.files),
            "size_bytes": self.manifest.total_bytes,
            "size_mib": round(self.manifest.total_bytes / 2**20, 1),
            "reused": self.reused,
        }


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "june" / "models").expanduser()


def offline_from_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def store_path(cache_dir: Path, model_id: str, revision: str) -> Path:
    return Path(cache_dir) / model_id / revision


def entry_path(cache_dir: Path, spec: ModelSpec) -> Path:
    """Where a model's weights live in the store: `<cache>/<id>/<pinned revision or "local">`.

    The one rule for fetches, imports, builds and serving (imports record the registry's revision).
    """
    return store_path(cache_dir, spec.id, spec.revision or "local")


def verified_entry(cache_dir: Path, spec: ModelSpec) -> Path:
    """The model's store entry after a quick check (manifest present, sizes match); raises WeightsError."""
    path = entry_path(cache_dir, spec)
    if not (path / MANIFEST_NAME).is_file():
        raise WeightsError(
            f"no verified weights for {spec.id!r} at {path}: materialize model_weights "
            f"(or run `june engine weights {spec.id}`) first"
        )
    verify(path, full=False)
    return path


def resolve_local_dir(value: str) -> Path:
    """A registry `local_dir`: a path, `package:NAME[/SUB]` (a folder inside an installed package,
    located without importing it), or `python:MODULE:FUNCTION` (a function returning the path)."""
    if value.startswith("package:"):
        package, _, sub = value.removeprefix("package:").partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise WeightsError(f"local_dir {value!r}: package {package!r} is not installed")
        path = Path(next(iter(found.submodule_search_locations))) / sub
    elif value.startswith("python:"):
        module, _, func = value.removeprefix("python:").partition(":")
        try:
            path = Path(getattr(importlib.import_module(module), func)())
        except (ImportError, AttributeError) as exc:
            raise WeightsError(f"local_dir {value!r}: cannot call {module}.{func}(): {exc}") from exc
    else:
        path = Path(value).expanduser()
    if not path.is_dir():
        raise WeightsError(f"local_dir {value!r}: {path} is not a directory")
    return path


def sha256_file(path: Path, chunk: int = 8 * 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def matches(rel: str, patterns: Iterable[str]) -> bool:
    patterns = tuple(patterns)
    name = rel.rsplit("/", 1)[-1]
    return not patterns or any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def select_files(root: Path, patterns: Iterable[str] = ()) -> list[str]:
    """Relative paths of the model files under `root` matching any pattern (all files if none)."""
    patterns = tuple(patterns)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel == MANIFEST_NAME or name.endswith(".incomplete") or name.endswith(".lock"):
                continue
            if matches(rel, patterns):
                found.append(rel)
    return found


def build_manifest(root: Path, model_id: str, revision: str, source: str, files: Iterable[str]) -> Manifest:
    entries = tuple(
        FileEntry(path=rel, size=(root / rel).stat().st_size, sha256=sha256_file(root / rel)) for rel in files
    )
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Manifest(model_id=model_id, revision=revision, source=source, created_utc=created, files=entries)


def read_manifest(root: Path) -> Manifest:
    path = Path(root) / MANIFEST_NAME
    try:
        return Manifest.from_json(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"no manifest at {path}: the entry is incomplete; fetch or import it again") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise WeightsError(f"unreadable manifest {path}: {exc}") from exc


def verify(root: Path, full: bool = True) -> Manifest:
    """Check every manifest entry exists with its size (and sha256 when `full`). Raises WeightsError."""
    manifest = read_manifest(root)
    problems: list[str] = []
    for entry in manifest.files:
        path = Path(root) / entry.path
        if not path.is_file():
            problems.append(f"missing {entry.path}")
        elif path.stat().st_size != entry.size:
            problems.append(f"size of {entry.path} is {path.stat().st_size}, manifest says {entry.size}")
        elif full and sha256_file(path) != entry.sha256:
            problems.append(f"sha256 of {entry.path} differs from the manifest")
    if problems:
        raise WeightsError(f"weights at {root} failed verification: " + "; ".join(problems))
    return manifest


def _publish(staging: Path, final: Path, manifest: Manifest) -> None:
    """Write the manifest, re-verify the staged files, and move them into place atomically."""
    (staging / MANIFEST_NAME).write_text(manifest.to_json())
    verify(staging, full=False)  # sizes only: the hashes were computed from these very files
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)


def import_local(
    spec: ModelSpec,
    source_dir: Path,
    cache_dir: Path,
    revision: str | None = None,
    log: Log = lambda _: None,
) -> Weights:
    """Copy a model from a local directory (a bundled package, an air-gapped transfer) into the store.

    Files are filtered by the registry's `files` patterns. The revision recorded is the one given,
    else the registry's, else `local`.
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise WeightsError(f"model {spec.id!r}: import directory {source_dir} does not exist")
    files = select_files(source_dir, spec.files)
    if not files:
        wanted = ", ".join(spec.files) or "any file"
        raise WeightsError(f"model {spec.id!r}: no files matching {wanted} in {source_dir}")
    rev = revision or spec.revision or "local"
    final = store_path(cache_dir, spec.id, rev)
    if final.is_dir() and (final / MANIFEST_NAME).is_file():
        existing = verify(final)
        same = {(f.path, f.size) for f in existing.files} == {
            (rel, (source_dir / rel).stat().st_size) for rel in files
        }
        if same and all(sha256_file(source_dir / f.path) == f.sha256 for f in existing.files):
            log(f"{spec.id}: {final} already holds these {len(files)} files")
            return Weights(spec.id, final, existing, reused=True)
    staging = final.parent / f".{rev}.partial-import-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for rel in files:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source_dir / rel, staging / rel)  # follows symlinks: the store holds real files
            log(f"{spec.id}: copied {rel}")
        manifest = build_manifest(staging, spec.id, rev, f"local:{source_dir}", files)
        _publish(staging, final, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Weights(spec.id, final, manifest, reused=False)


def _has_completed_files(staging: Path) -> bool:
    return bool(select_files(staging)) if staging.is_dir() else False


def download_from_hub(
    spec: ModelSpec,
    cache_dir: Path,
    token: str | None = None,
    endpoint: str | None = None,
    log: Log = lambda _: None,
) -> Weights:
    """`huggingface_hub.snapshot_download` of the pinned revision into a staging directory, then
    manifest, verify and publish. An interrupted download resumes from the staging directory."""
    if not spec.hub_repo:
        raise WeightsError(f"model {spec.id!r} has no hub_repo in the registry; import it from a local directory")
    if not spec.revision:
        raise WeightsError(
            f"model {spec.id!r} has no pinned revision; set `revision: <commit sha>` for it in the registry"
        )
    from huggingface_hub import HfApi, snapshot_download

    final = store_path(cache_dir, spec.id, spec.revision)
    staging = final.parent / f".{spec.revision}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    log(f"{spec.id}: downloading {spec.hub_repo}@{spec.revision} ({', '.join(spec.files) or 'all files'})")
    try:
        # The hub's own file list (sizes, LFS sha256) for this revision: what a complete download is.
        info = HfApi(endpoint=endpoint, token=token).model_info(
            spec.hub_repo, revision=spec.revision, files_metadata=True
        )
        expected = {s.rfilename: s for s in info.siblings or [] if matches(s.rfilename, spec.files)}
        snapshot_download(
            repo_id=spec.hub_repo,
            revision=spec.revision,
            allow_patterns=list(spec.files) or None,
            local_dir=staging,
            token=token,
            endpoint=endpoint,
        )
    except Exception as exc:
        kept = _has_completed_files(staging)
        if not kept:
            shutil.rmtree(staging, ignore_errors=True)
        where = endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        raise WeightsError(
            f"model {spec.id!r}: could not download {spec.hub_repo}@{spec.revision} from {where}: "
            f"{type(exc).__name__}: {exc}. Nothing was added to {final}"
            + (f"; completed files stay in {staging} and the next attempt resumes from them" if kept else "")
            + ". Without network access, import the files with `june engine weights MODEL --import-dir DIR` "
            + "or set HF_HUB_OFFLINE=1 "
            "to use only what is already cached."
        ) from exc
    if not expected:
        raise WeightsError(f"model {spec.id!r}: no file of {spec.hub_repo}@{spec.revision} matches {list(spec.files)}")
    files = sorted(expected)
    missing = [f for f in files if not (staging / f).is_file()]
    if missing:
        raise WeightsError(f"model {spec.id!r}: download incomplete, missing {missing}; run again to resume")
    shutil.rmtree(staging / ".cache", ignore_errors=True)
    manifest = build_manifest(staging, spec.id, spec.revision, f"hub:{spec.hub_repo}", files)
    _check_against_hub(spec, manifest, expected)
    _publish(staging, final, manifest)
    log(f"{spec.id}: {len(files)} files, {manifest.total_bytes} bytes in {final}")
    return Weights(spec.id, final, manifest, reused=False)


def _check_against_hub(spec: ModelSpec, manifest: Manifest, expected: dict) -> None:
    """Sizes against the hub's listing, sha256 against its LFS metadata (large files)."""
    problems = []
    for entry in manifest.files:
        sibling = expected[entry.path]
        if sibling.size is not None and sibling.size != entry.size:
            problems.append(f"{entry.path}: {entry.size} bytes, the hub says {sibling.size}")
        lfs = getattr(sibling, "lfs", None)
        if lfs is not None and getattr(lfs, "sha256", None) and lfs.sha256 != entry.sha256:
            problems.append(f"{entry.path}: sha256 differs from the hub's")
    if problems:
        raise WeightsError(
            f"model {spec.id!r}: downloaded files do not match {spec.hub_repo}@{spec.revision}: {problems}"
        )


def ensure_weights(
    spec: ModelSpec,
    cache_dir: Path | None = None,
    *,
    offline: bool | None = None,
    import_dir: Path | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    full_verify: bool = True,
    log: Log = lambda _: None,
) -> Weights:
    """Verified weights for a registered model, fetching them only when needed.

    Order: an explicit `import_dir`; the registry's `local_dir`; an already verified cache entry for
    the pinned revision; the hub (never when offline: `offline=True` or HF_HUB_OFFLINE=1).
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    if import_dir is not None:
        return import_local(spec, Path(import_dir), cache_dir, log=log)
    if spec.local_dir:
        return import_local(spec, resolve_local_dir(spec.local_dir), cache_dir, log=log)
    offline = offline_from_env() if offline is None else offline
    if spec.revision:
        final = store_path(cache_dir, spec.id, spec.revision)
        if (final / MANIFEST_NAME).is_file():
            manifest = verify(final, full=full_verify)
            log(f"{spec.id}: using verified cache entry {final}")
            return Weights(spec.id, final, manifest, reused=True)
        if offline:
            raise WeightsError(
                f"model {spec.id!r}: offline mode and revision {spec.revision} is not in the cache "
                f"(expected {final} with {MANIFEST_NAME}). Download it on a connected host, or import the "
                f"files with `june engine weights {spec.id} --import-dir DIR`."
            )
    elif offline:
        raise WeightsError(f"model {spec.id!r}: offline mode and no pinned revision to look up in the cache")
    return download_from_hub(spec, cache_dir, token=token, endpoint=endpoint, log=log)
