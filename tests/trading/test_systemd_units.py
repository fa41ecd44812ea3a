"""The systemd units in ``deploy/systemd/`` supervise every Procfile process: one unit each
(a template instance per symbol for the engines), restarted whatever ends it, running the
very command the Procfile runs."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.processes import ROOT

UNITS = ROOT / "deploy" / "systemd"


def procfile() -> dict[str, str]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = command.strip()
    return processes


def unit(path: Path) -> configparser.ConfigParser:
    # systemd allows repeated keys (Wants=, Environment=): keep them all, one per line.
    parser = configparser.ConfigParser(strict=False, interpolation=None, empty_lines_in_values=False)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def unit_for(name: str, command: str) -> tuple[Path, dict[str, str]]:
    """The unit running Procfile process ``name``, and the specifiers its instance sets."""
    if name.startswith("engine-"):
        symbol = re.search(r"--symbol (\S+)", command).group(1)
        return UNITS / "meridian-engine@.service", {"%i": symbol}
    return UNITS / f"meridian-{name}.service", {}


def shell_command(exec_start: str, specifiers: dict[str, str]) -> list[str]:
    """The words of the command the unit's ``/bin/sh -c '...'`` runs, as the shell gets it
    (systemd turns ``$$`` into ``$`` and ``%%`` into ``%``, and fills the instance in)."""
    argv = shlex.split(exec_start)
    assert argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3, exec_start
    script = argv[2]
    for specifier, value in specifiers.items():
        script = script.replace(specifier, value)
    assert not re.search(r"(?<!%)%[a-zA-Z](?!%)", script.replace("%%", "")), f"an unescaped specifier: {script}"
    assert not re.search(r"(?<!\$)\$(?!\$)", script), f"a $ systemd would expand itself: {script}"
    script = script.replace("$$", "$").replace("%%", "%")
    words = shlex.split(script)
    assert "exec" in words, f"the shell must exec the process (systemd signals it directly): {script}"
    words.remove("exec")
    return words


@pytest.mark.parametrize("name", sorted(procfile()))
def test_every_procfile_process_has_a_unit_that_restarts_it_and_runs_its_command(name):
    command = procfile()[name]
    path, specifiers = unit_for(name, command)
    assert path.exists(), f"no unit for the Procfile process {name!r} ({path.name})"
    parsed = unit(path)
    service = parsed["Service"]
    assert service["Restart"] == "always"
    assert 0 < float(service["RestartSec"]) <= 10
    assert parsed["Unit"].get("StartLimitIntervalSec") == "0", "systemd would give up after 5 quick restarts"
    assert service["EnvironmentFile"].lstrip("-") == "/etc/meridian/meridian.env"
    assert service["WorkingDirectory"] == "/srv/meridian"
    assert shell_command(service["ExecStart"], specifiers) == shlex.split(command)
    for dependency in ("postgresql.service", "redis-server.service"):
        assert dependency in parsed["Unit"]["After"].split()
        assert dependency in parsed["Unit"]["Wants"].split()
        # Requires=/BindsTo= would stop the process with PostgreSQL or Redis; it rides outages out.
        assert dependency not in parsed["Unit"].get("Requires", "") + parsed["Unit"].get("BindsTo", "")
    assert parsed["Install"]["WantedBy"] == "meridian.target"
    assert parsed["Unit"]["PartOf"] == "meridian.target"


def test_every_unit_runs_a_procfile_process_and_the_target_exists():
    expected = {unit_for(name, command)[0].name for name, command in procfile().items()}
    shipped = {path.name for path in UNITS.glob("*.service")}
    assert shipped == expected
    assert unit(UNITS / "meridian.target")["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_accepts_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for path in UNITS.iterdir():
        shutil.copy(path, tmp_path / path.name)
    instance = tmp_path / "meridian-engine@BTC-USDT.service"
    shutil.copy(UNITS / "meridian-engine@.service", instance)
    paths = [str(tmp_path / name) for name in sorted(p.name for p in tmp_path.iterdir()) if "@." not in name]
    result = subprocess.run([analyze, "verify", "--man=no", *paths], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
