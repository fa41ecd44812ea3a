"""gunicorn settings for ``bench/api.py --profile DIR``: the Procfile's (``trading.gunicorn_conf``)
with each worker running under cProfile from its start, its profile written to
``DIR/worker-<pid>.prof`` when it exits. Read them with ``python -m pstats``.

The workers are sync workers (one request at a time, in the worker's main thread): cProfile
sees only the thread it was enabled in, and a gthread worker serves requests on other threads,
so its profile would hold nothing but the event loop."""

import cProfile
import os

from trading import gunicorn_conf
from trading.gunicorn_conf import *  # noqa: F403

threads = 1
worker_class = "sync"

_profiles = {}


def post_worker_init(worker):
    profile = _profiles[worker.pid] = cProfile.Profile()
    profile.enable()


def worker_exit(server, worker):
    profile = _profiles.pop(worker.pid, None)
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.path.join(os.environ["BENCH_PROFILE_DIR"], f"worker-{worker.pid}.prof"))
    gunicorn_conf.worker_exit(server, worker)
