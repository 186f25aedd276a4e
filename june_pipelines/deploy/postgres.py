"""dagster-postgres on psycopg2, the PostgreSQL driver June installs (the `deploy` extra).

SQLAlchemy 2.1 maps a plain `postgresql://` URL to psycopg 3, which nothing in June installs, so
Dagster's own `storage: postgres` block fails with `No module named 'psycopg'` on a URL as users
write it. This storage class is dagster-postgres's, with the driver named in the URL it hands to
SQLAlchemy; the configuration (`postgres_url` or `postgres_db`, from the environment) is unchanged.
June's instance config names it (`storage: custom`, june_pipelines/deploy/instance.py), so every
process that opens the instance (webserver, daemon, code server, run workers, the CLI) uses it.
"""

from __future__ import annotations

from typing import Any

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

DRIVER_SCHEME = "postgresql+psycopg2"


def sqlalchemy_url(url: str) -> str:
    """`postgresql://...` (or `postgres://`) with the psycopg2 driver named; other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    return f"{DRIVER_SCHEME}://{rest}" if sep and scheme in ("postgresql", "postgres") else url


class PostgresStorage(DagsterPostgresStorage):
    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PostgresStorage:  # ConfigurableClass hook
        return cls(
            inst_data=inst_data,
            postgres_url=sqlalchemy_url(pg_url_from_config(config_value)),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
