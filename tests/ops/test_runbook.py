"""The runbook cannot fall behind the monitor: every check ``ops/probes.py`` can raise has
an entry in docs/operations.md ("Monitor checks (runbook)") saying what to do and how to
verify recovery, and no entry names a check that no longer exists."""

from __future__ import annotations

import html
import re
from pathlib import Path

from ops.probes import all_probes

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def runbook_entries() -> dict[str, str]:
    """Each ``- **check** — …`` entry of the runbook section, by check name (``web:<url>``
    is ``web``), with its text."""
    text = RUNBOOK.read_text()
    section = text.split("### Monitor checks (runbook)\n", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    entries = {}
    for block in re.split(r"\n(?=- \*\*)", section):
        match = re.match(r"- \*\*([^*]+)\*\*", block)
        if match:
            entries[html.unescape(match.group(1)).split(":")[0]] = block
    return entries


def test_every_probe_has_a_runbook_entry_and_every_entry_a_probe(settings):
    settings.MONITOR_CHECKS = []  # every probe
    settings.MONITOR_WEB_URLS = ["http://127.0.0.1:8000"]
    probes = {name.split(":")[0] for name in all_probes()}
    assert len(probes) >= 10, probes
    entries = runbook_entries()
    assert probes - set(entries) == set(), "checks without a runbook entry in docs/operations.md"
    assert set(entries) - probes == set(), "runbook entries for checks the monitor does not have"


def test_every_entry_says_what_it_means_what_to_do_and_how_to_verify():
    for check, block in runbook_entries().items():
        for part in ("*Effect*:", "*Do*:", "*Verify*:"):
            assert part in block, f"the runbook entry {check!r} has no {part}"
