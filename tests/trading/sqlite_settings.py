"""Settings to run the lease tests against SQLite (embedded mode) with a *file* test
database, so that real contender processes can open it too (``SQLITE_PATH``)."""

import os

os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

from trading.settings import *  # noqa: E402,F403

DATABASES["default"]["TEST"] = {"NAME": os.environ["LEASE_TEST_SQLITE"]}  # noqa: F405
