"""The stack's web processes as ``scripts/supervise`` runs the Procfile's ``web`` and ``ws``
lines: HTTP on gunicorn (workers of threads) at ``PORT``, websockets on daphne at ``WS_PORT``, the
pages telling the browser where the websockets are, and a rolling restart of both that
refuses no request. The page's websocket base is also checked without any server."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.processes import ROOT, collect_static, free_port, test_database_url
from tests.settlement.stack import BackOffice


def web_lines() -> str:
    """The Procfile's web and ws lines, unchanged."""
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if re.match(r"(web|ws):", line)]
    assert [line.split(":", 1)[0] for line in lines] == ["web", "ws"], lines
    return "\n".join(lines) + "\n"


def page_ws_base(html: str) -> str:
    found = re.search(r'<meta name="ws-base" content="([^"]*)">', html)
    assert found, "the page carries no ws-base"
    return found.group(1)


@pytest.mark.django_db
def test_pages_carry_the_websocket_base(client, settings):
    assert page_ws_base(client.get("/").content.decode()) == ""  # the default: the page's own origin
    settings.WS_PUBLIC_URL = ":8001"
    assert page_ws_base(client.get("/").content.decode()) == ":8001"
    settings.WS_PUBLIC_URL = "wss://ws.example.com"
    assert page_ws_base(client.get("/markets/").content.decode()) == "wss://ws.example.com"


def processes_under(pid: int) -> list[str]:
    """The command lines of ``pid``'s descendants."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    found, frontier = [], {str(pid)}
    while frontier:
        children = [row for row in rows if row[1] in frontier]
        found += [row[2] for row in children]
        frontier = {row[0] for row in children}
    return found


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_supervised_http_on_gunicorn_and_websockets_on_daphne(tmp_path):
    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    procfile = tmp_path / "Procfile"
    procfile.write_text(web_lines())
    port, ws_port = free_port(), free_port()
    office = BackOffice(tmp_path, PORT=port, WS_PORT=ws_port, WEB_WORKERS=2, WEB_PROCESSES=2).start_redis()
    # as `make stack` does before it starts the processes (DEBUG=0 serves the manifest's files)
    collect_static(office.env)
    state = tmp_path / "stack"
    supervisor = office.spawn(
        "supervisor", [sys.executable, "scripts/supervise", "--procfile", str(procfile), "--state", str(state)]
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        supervisor.wait_for(f"web=http://127.0.0.1:{port},http://127.0.0.1:{ws_port}", 30)
        deadline = time.monotonic() + 90
        while sum("SERVING pid=" in line for line in supervisor.lines) < 4:  # 2 gunicorn workers, 2 daphne
            assert supervisor.alive and time.monotonic() < deadline, "".join(supervisor.lines[-40:])
            time.sleep(0.1)

        # HTTP: gunicorn, one master and WEB_WORKERS workers
        health = requests.get(f"{origin}/healthz", timeout=10)
        assert health.status_code == 200 and health.headers["Server"].startswith("gunicorn"), health.headers
        rows = json.loads((state / "processes.json").read_text())
        assert sorted(row["name"] for row in rows) == ["web", "ws.1", "ws.2"]
        web_pid = next(row["pid"] for row in rows if row["name"] == "web")
        workers = [cmd for cmd in processes_under(web_pid) if "gunicorn" in cmd]
        assert len(workers) == 2, workers
        # websockets: daphne, on WS_PORT
        assert requests.get(f"http://127.0.0.1:{ws_port}/healthz", timeout=10).headers["Server"].startswith("daphne")

        # the page (from gunicorn) tells the browser where the websockets are: its host, WS_PORT
        assert page_ws_base(requests.get(f"{origin}/", timeout=10).text) == f":{ws_port}"
        # a websocket opened from the page's origin is accepted and served
        with connect(f"ws://127.0.0.1:{ws_port}/ws/market/", origin=origin, open_timeout=10) as socket:
            socket.send(json.dumps({"op": "subscribe", "channels": ["book:BTC-USDT"]}))
            assert json.loads(socket.recv(timeout=10))
        # one from another site's page is refused
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{ws_port}/ws/market/", origin="http://elsewhere.example", open_timeout=10)
        assert refused.value.response.status_code == 403

        # a rolling restart of both under requests: every process replaced, nothing refused
        failures, done = [], threading.Event()
        answered = [0]

        def hammer():
            while not done.is_set():
                try:
                    response = requests.get(f"{origin}/healthz", headers={"Connection": "close"}, timeout=10)
                    if response.status_code != 200:
                        failures.append(response.status_code)
                    answered[0] += 1
                except requests.RequestException as exc:
                    failures.append(repr(exc))

        threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        restart = subprocess.run(
            [sys.executable, "scripts/rolling-restart", "--state", str(state), "--timeout", "120"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=150,
        )
        done.set()
        for thread in threads:
            thread.join(15)
        assert restart.returncode == 0, restart.stdout[-3000:] + restart.stderr[-2000:]
        assert restart.stdout.count("drained in") == 3, restart.stdout
        assert failures == [] and answered[0] > 20, (failures[:5], answered[0])
        new_rows = json.loads((state / "processes.json").read_text())
        assert not {row["pid"] for row in rows} & {row["pid"] for row in new_rows}, (rows, new_rows)
        assert requests.get(f"{origin}/healthz", timeout=10).headers["Server"].startswith("gunicorn")
    finally:
        if supervisor.alive:
            supervisor.proc.send_signal(signal.SIGTERM)
            supervisor.proc.wait(60)
        office.shutdown()
