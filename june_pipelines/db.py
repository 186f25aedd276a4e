"""The shared database: PostgreSQL when `JUNE_POSTGRES_URL` is set, else each store's local SQLite file.

One URL switches everything that must be shared between hosts (the Dagster instance, the bots' inbox,
conversation memory) to one PostgreSQL. This module only knows how to find and open it; each store
owns its own schema and SQL. psycopg2 (the `deploy` extra, also what dagster-postgres uses) is
imported only when a PostgreSQL URL is actually opened.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

POSTGRES_URL_ENV = "JUNE_POSTGRES_URL"


class DatabaseConfigError(ValueError):
    """The configured database URL cannot be used (one line, for the CLI to print)."""


def postgres_url(value: str | None = None) -> str | None:
    """The configured PostgreSQL URL (`value`, else JUNE_POSTGRES_URL), validated; None means SQLite."""
    url = value if value is not None else os.environ.get(POSTGRES_URL_ENV)
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise DatabaseConfigError(
            f"{POSTGRES_URL_ENV} must look like postgresql://USER:PASSWORD@HOST:PORT/DB (got scheme {parts.scheme!r})"
        )
    if not parts.hostname or not parts.path.strip("/"):
        raise DatabaseConfigError(f"{POSTGRES_URL_ENV} needs a host and a database name: postgresql://USER:PASSWORD@HOST:PORT/DB")
    return url


def redacted(url: str) -> str:
    """The URL without its password, for logs and metadata."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def connect_postgres(url: str, connect_timeout_s: int = 10) -> Any:
    """A psycopg2 connection (autocommit off); a clear error when the server cannot be reached."""
    try:
        import psycopg2
    except ImportError as exc:  # the `deploy` extra is not installed
        raise DatabaseConfigError("PostgreSQL needs psycopg2: install June with the `deploy` extra") from exc
    try:
        return psycopg2.connect(url, connect_timeout=connect_timeout_s)
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseConfigError(f"cannot connect to PostgreSQL at {redacted(url)}: {first_line}") from None
