"""The serving domain's exceptions, so callers can tell bad input from a failed step.

`ServingInputError` (and its subclasses) means the request itself is wrong: the CLI reports it as a
usage error (exit code 2) and Dagster as a failure with no retry. Everything else is a step that
could not complete (no GPU, a container that exited, a server that did not answer).
"""

from __future__ import annotations


class ServingError(Exception):
    """Base class of every serving error."""


class ServingInputError(ServingError, ValueError):
    """Bad settings, a bad path, an unknown option value: nothing was started."""


class BuildError(ServingError, RuntimeError):
    """A TensorRT-LLM step failed or cannot run with these settings."""


class VersionError(BuildError):
    """A container or installed TensorRT-LLM outside the release line June is written for."""


class GpuUnavailable(ServingError, RuntimeError):
    """No usable NVIDIA GPU for this step; the message lists every missing piece."""


class WeightsMissing(ServingError, RuntimeError):
    """No verified weights in the model store for this model."""


class CalibrationError(ServingInputError):
    """Calibration data missing or not in the shape quantize.py reads."""


class InvalidBuildSettings(ServingInputError, BuildError):
    """TensorRT-LLM settings that cannot work together (caught before any container starts)."""
