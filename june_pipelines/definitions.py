"""The Dagster code location. Each domain module exposes its own `defs`; this file only merges them.

Importing this module loads no model and no heavy library (llama_cpp, ctranslate2, docker, ...).
"""

import dagster as dg

from june_pipelines.assets import benchmarks, engines, models
from june_pipelines.bots import sensor as bot_sensor
from june_pipelines.resources import default_resources
from june_pipelines.voice import defs as voice

defs = dg.Definitions.merge(
    benchmarks.defs,
    models.defs,
    engines.defs,
    voice.defs,
    bot_sensor.defs,
    dg.Definitions(resources=default_resources()),
)
