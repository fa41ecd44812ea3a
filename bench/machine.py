"""What every benchmark prints first: the machine and the PostgreSQL server it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine_lines() -> list[str]:
    """``machine:`` (cores, CPU model, kernel) and ``postgresql:`` (version, commit mode) lines,
    for the database Django is configured with."""
    from django.db import connection

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    with connection.cursor() as cursor:
        cursor.execute("select version(), current_setting('synchronous_commit')")
        version, sync = cursor.fetchone()
    return [
        f"machine:    nproc {os.cpu_count()}, CPU {model}, {platform.system()} {platform.release()}",
        f"postgresql: {version.split(' on ')[0]} (synchronous_commit={sync})",
    ]
