"""Create the PostgreSQL database named in DATABASE_URL if it does not exist yet."""

import os
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

url = os.environ.get("DATABASE_URL", "")
parts = urlsplit(url)
if not parts.scheme.startswith("postgres"):
    sys.exit(0)
name = parts.path.lstrip("/")
maintenance = urlunsplit(parts._replace(path="/postgres"))
with psycopg.connect(maintenance, autocommit=True) as conn:
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"==> created database {name}")
