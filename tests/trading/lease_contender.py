"""A lease contender for the real-process tests: ``python lease_contender.py ROLE TTL HOLDER``.

Runs a ``Singleton`` for ROLE whose work saves a checkpoint ``{"holder": HOLDER, "n": i}``
every ~100 ms through a fenced write, and prints one line per event (flushed), e.g.
``LEADER role=r epoch=3 holder=h``, ``WRITE ok n=5 epoch=3``, ``WRITE refused epoch=3``,
``STEPPED DOWN role=r epoch=3: ...``. The database comes from the environment
(``DATABASE_URL`` or ``SQLITE_PATH``), as for every process of the platform."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")

import django

django.setup()

from trading.leases import LeaseLost, Singleton, checkpoint_save  # noqa: E402


def main() -> None:
    role, ttl, holder = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    count = 0

    def say(line: str) -> None:
        print(line, flush=True)

    def work(epoch: int) -> None:
        nonlocal count
        count += 1
        try:
            checkpoint_save(name=role, epoch=epoch, holder=holder, value={"holder": holder, "n": count})
        except LeaseLost as exc:
            say(f"WRITE refused epoch={epoch}: {exc.message}")
            raise
        say(f"WRITE ok n={count} epoch={epoch}")

    say(f"READY pid={os.getpid()} holder={holder}")
    Singleton(role, work=work, ttl=ttl, interval=0.1, holder=holder, announce=say).run()


if __name__ == "__main__":
    main()
