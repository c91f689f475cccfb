"""Create the PostgreSQL database that ``DATABASE_URL`` names when it does not exist yet.

Run by ``deploy/stack.sh start`` before ``manage.py migrate``; prints one line saying what it found
or did. Other databases (SQLite) need nothing: ``migrate`` creates the file.
"""

import os
import sys

import dj_database_url
import psycopg
from psycopg import sql


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    config = dj_database_url.parse(url) if url else {"ENGINE": "sqlite"}
    if "postgresql" not in config["ENGINE"]:
        print(f"{config['ENGINE'].rsplit('.', 1)[-1]}, created by migrate when missing")
        return 0
    name = config["NAME"]
    where = f"{config.get('HOST') or 'local socket'}:{config.get('PORT') or 5432}"
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    params = {key: value for key, value in params.items() if value is not None}
    try:
        # The maintenance database, as createdb does.
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if exists:
                print(f"PostgreSQL database {name} on {where}")
                return 0
            try:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                # Created by someone else between the check and here: it exists, which is all
                # this asks.
                print(f"PostgreSQL database {name} on {where} (created meanwhile)")
                return 0
    except psycopg.Error as error:
        print(f"cannot check or create database {name} on {where}: {error}", file=sys.stderr)
        return 1
    print(f"PostgreSQL database {name} on {where} (created)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
