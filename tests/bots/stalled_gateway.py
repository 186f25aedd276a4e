"""A Telegram gateway process whose every turn hangs (a model that never answers), for the lease tests.

Run as a script with the same environment as `june bot telegram` (TELEGRAM_BOT_TOKEN,
TELEGRAM_API_BASE_URL, JUNE_INBOX_DB or JUNE_POSTGRES_URL). It uses only the gateway's public
API, so it runs against any version of June.
"""

from __future__ import annotations

import logging
import os
import threading

from june_pipelines.bots.inbox import Inbox
from june_pipelines.bots.telegram import TelegramConfig, TelegramGateway


class HangingPipeline:
    memory = None

    def turn(self, *args: object, **kwargs: object) -> None:
        threading.Event().wait()  # until the process is killed


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TelegramConfig(token=os.environ["TELEGRAM_BOT_TOKEN"], base_url=os.environ["TELEGRAM_API_BASE_URL"],
                            poll_timeout_s=1)
    TelegramGateway(config, HangingPipeline(), Inbox()).run()  # type: ignore[arg-type]  # a stand-in pipeline


if __name__ == "__main__":
    main()
