"""Settings to run tests against SQLite, as the embedded mode does, with a *file* test
database (``SQLITE_TEST_DB``) that threads and real child processes can open too. Used by
``tests.processes.pytest_on_sqlite``."""

import os

os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

from trading.settings import *  # noqa: F403

DATABASES["default"]["TEST"] = {"NAME": os.environ["SQLITE_TEST_DB"]}  # noqa: F405
