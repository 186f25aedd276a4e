"""The voice domain's Dagster definitions: its resources and the conversation assets.

`stt` and `tts` are the speech models every voice turn uses (the gateways, the bot sensor's runs,
`june voice`); `memory` is the conversation log. None of them reads configuration at load time:
the memory finds its database (JUNE_POSTGRES_URL, else SQLite) when a run opens it, so a
password never appears in the code location's config.
"""

import dagster as dg

from june_pipelines.assets import conversations
from june_pipelines.voice.resources import ConversationMemoryResource, STTResource, TTSResource

defs = dg.Definitions.merge(
    conversations.defs,
    dg.Definitions(resources={"stt": STTResource(), "tts": TTSResource(), "memory": ConversationMemoryResource()}),
)
