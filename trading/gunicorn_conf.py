"""gunicorn's settings for the stack's HTTP server (the Procfile's ``web`` line):
``gunicorn trading.wsgi -c python:trading.gunicorn_conf --bind ... --workers N``.

Workers, one per core (``--workers``), each with ``WEB_THREADS`` (4) threads: a thread
serves one request at a time on a persistent PostgreSQL connection of its own
(``CONN_MAX_AGE``). Websockets are served by daphne (the ``ws`` line); this process serves
every other request.

Graceful stop: on SIGTERM the master closes its listening socket and lets each worker finish
the requests it is serving (at most ``WEB_DRAIN_SECONDS``, default 20) before exiting. When
the socket is shared (``--bind fd://N``, as ``scripts/supervise`` runs it), the connections
waiting on it go to the other processes listening on it. ``SERVING pid=...`` is printed when
a worker is ready, ``DRAINED pid=...`` when the master has stopped, for the supervisor's
progress output (the same markers as ``trading.serve``).
"""

from __future__ import annotations

import logging
import os
import sys

# Threads per worker (WEB_THREADS, default 4): order entry waits for PostgreSQL for most of
# a request (a dozen round trips and a commit), and a worker's threads overlap those waits;
# 1 = sync workers, one request at a time each.
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
graceful_timeout = int(float(os.environ.get("WEB_DRAIN_SECONDS", "20")))
timeout = int(os.environ.get("WEB_TIMEOUT_SECONDS", "30"))
backlog = 2048
# the request log is the application's (django-guid, JSON logs); gunicorn's errors only
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
# the heartbeat file each worker touches: on tmpfs when there is one
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = "meridian-web"
# no control socket: during a rolling restart two masters run side by side in one directory
control_socket_disable = True


def post_worker_init(worker):
    print(f"SERVING pid={worker.pid} (gunicorn worker of {worker.ppid})", flush=True)


def on_exit(server):
    # after the graceful stop: every worker has finished its request and exited
    print(f"DRAINED pid={os.getpid()}", flush=True)


def worker_exit(server, worker):
    """A worker that served and stopped normally exits at once: its requests are done, and the
    interpreter's teardown of a Django process takes seconds of CPU on a busy machine, which
    would only delay the end of the drain. A worker that failed to boot exits as gunicorn
    decides (its exit code tells the master to stop)."""
    ending = sys.exc_info()[1]
    if worker.booted and isinstance(ending, SystemExit) and ending.code in (0, None):
        from django.db import connections

        connections.close_all()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
