"""A real PostgreSQL for the tests that need one, shared by every test folder.

`scripts/setup-system.sh` starts Debian's PostgreSQL and creates the `june` role (CREATEDB).
Each caller of `fresh_database()` gets a database of its own, dropped afterwards, so tests never
see each other's rows. Without a server the tests skip, except where one is required (CI sets
JUNE_REQUIRE_POSTGRES=1): there they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("JUNE_TEST_POSTGRES_URL", "postgresql://june:june@127.0.0.1:5432/june")


def _connect(url: str):  # type: ignore[no-untyped-def]  # psycopg2 ships no type hints
    import psycopg2

    return psycopg2.connect(url, connect_timeout=5)


def postgres_answers() -> bool:
    try:
        _connect(ADMIN_URL).close()
    except Exception:
        return False
    return True


def require_postgres() -> None:
    if postgres_answers():
        return
    message = f"no PostgreSQL answers at {ADMIN_URL} (run scripts/setup-system.sh as root)"
    if os.environ.get("JUNE_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + " but JUNE_REQUIRE_POSTGRES=1")
    pytest.skip(message)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def fresh_database(prefix: str = "june_test") -> Iterator[str]:
    """Create an empty database, yield its URL, drop it (and its connections) afterwards."""
    require_postgres()
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = _connect(ADMIN_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield _with_database(ADMIN_URL, name)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
