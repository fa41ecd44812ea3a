"""The suite's settings: the platform's own, with a random signing key for this run when the
environment gives none (stack mode refuses to start without one; child processes the tests
start inherit it)."""

import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))

from trading.settings import *  # noqa: F403
