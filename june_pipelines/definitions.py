"""The Dagster code location. Each domain module exposes its own `defs`; this file only merges them.

Importing this module loads no model and no heavy library (llama_cpp, ctranslate2, docker, ...).
"""

import warnings

import dagster as dg

from june_pipelines.assets import benchmarks, engines, models
from june_pipelines.bots import sensor as bot_sensor
from june_pipelines.deploy import automation
from june_pipelines.resources import default_resources
from june_pipelines.voice import defs as voice

# Dagster 1.13 copies every sensor with `owners=[]` when it binds jobs and resources, and its beta check
# warns for any value but None: a warning about a parameter June never sets (issue 11, item 6).
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer `SensorDefinition.__init__`",
                        category=dg.BetaWarning)

defs = dg.Definitions.merge(
    benchmarks.defs,
    models.defs,
    engines.defs,
    voice.defs,
    bot_sensor.defs,
    automation.defs,
    dg.Definitions(resources=default_resources()),
)
