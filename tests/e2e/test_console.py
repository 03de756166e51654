"""The admin port of a real ``durabot run``: liveness, readiness and Prometheus metrics that count what happened."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.e2e.conftest import Bot, Process, SandboxClient, base_env, query, wait_until

CHAT = 6006
MACHINE = ["/addmachine", "Press 12", "Haas", "VF-2", "SN-77", "Bay 4", "greased monthly"]
ADMIN = {"ADMIN_ENABLED": "true", "ADMIN_LISTEN_PORT": "0"}


def console_url(worker: Process, name: str = "console") -> str:
    listening = worker.events("console.listening")[-1]
    return f"http://127.0.0.1:{listening[f'{name}_port']}"


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample ``/metrics`` exports, by name and labels."""
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_exactly_what_a_scripted_conversation_did(bot: Bot, sandbox: SandboxClient) -> None:
    worker = bot.start(**ADMIN)
    url = console_url(worker)
    assert httpx.get(f"{url}/healthz").json() == {"alive": True}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200 and ready.json()["intake"] == "polling", ready.text

    for replies, text in enumerate(MACHINE, start=1):
        sandbox.say(CHAT, text)
        sandbox.wait_for_reply(CHAT, replies)
    malformed = {"message": {"message_id": 1, "date": 1, "chat": {"id": "abc", "type": "private"}, "text": "hi"}}
    sandbox.http.post("/updates", json={"update": malformed})
    wait_until(lambda: value(samples(url), "durabot_updates_total", outcome="ignored") == 1, "the ignored update counted")

    found = samples(url)
    assert value(found, "durabot_updates_received_total") == len(MACHINE) + 1
    assert value(found, "durabot_updates_total", outcome="applied") == len(MACHINE)
    assert value(found, "durabot_updates_total", outcome="failed") == 0
    assert value(found, "durabot_step_seconds_count", flow="add_machine") == len(MACHINE)
    assert value(found, "durabot_flow_events_total", flow="add_machine", event="started", step="") == 1
    for step in ("nickname", "manufacturer", "model_number", "serial_number", "location", "notes"):
        assert value(found, "durabot_flow_events_total", flow="add_machine", event="step", step=step) == 1, step
    assert value(found, "durabot_flow_events_total", flow="add_machine", event="completed", step="") == 1
    wait_until(lambda: value(samples(url), "durabot_replies_total", result="sent", method="send_message") == len(MACHINE),
               "every reply counted as sent")
    assert value(found, "durabot_polling") == 1
    wait_until(lambda: value(samples(url), "durabot_database_up") == 1, "the database gauges read")
    found = samples(url)
    assert value(found, "durabot_outbox_dead_letters") == 0 and value(found, "durabot_orphans") == 0
    assert value(found, "durabot_inbox_backlog") == 0


def test_metrics_can_have_a_port_of_their_own(bot: Bot, sandbox: SandboxClient) -> None:
    worker = bot.start(**ADMIN, METRICS_LISTEN_PORT="0")
    console, metrics = console_url(worker), console_url(worker, "metrics")
    assert httpx.get(f"{console}/metrics").status_code == 404
    assert "durabot_updates_received_total" in httpx.get(f"{metrics}/metrics").text
    assert httpx.get(f"{metrics}/readyz").status_code == 404, "only the metrics there"


def test_readiness_in_webhook_mode(bot: Bot, sandbox: SandboxClient, tmp_path: Path) -> None:
    port = free_port()
    worker = bot.start(
        wait="webhook.listening",
        WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
        WEBHOOK_SECRET="s3cret-Token_1",
        WEBHOOK_LISTEN_HOST="127.0.0.1",
        WEBHOOK_LISTEN_PORT=str(port),
        **ADMIN,
    )
    url = console_url(worker)
    def ready_now() -> httpx.Response | None:
        response = httpx.get(f"{url}/readyz")
        return response if response.status_code == 200 else None

    ready = wait_until(ready_now, "ready in webhook mode")
    assert ready.json() == {"ready": True, "database": "ok", "migrations": "at head", "intake": "webhook", "outage_mode": False}
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_a_machines_photo_is_shown_in_the_console_fetched_through_the_bot(
    bot: Bot, sandbox: SandboxClient, sqlite_path: Path
) -> None:
    worker = bot.start(**ADMIN)
    url = console_url(worker)
    sandbox.send_photo(CHAT)
    wait_until(lambda: query(sqlite_path, "SELECT count(*) FROM telegram_updates")[0][0] == 1, "the photo stored")
    [(raw,)] = query(sqlite_path, "SELECT raw FROM telegram_updates")
    file_id = json.loads(raw)["message"]["photo"][-1]["file_id"]
    with sqlite3.connect(sqlite_path) as connection:
        connection.execute(
            "INSERT INTO user_machines (user_id, nickname, nickname_key, photo_file_id, created_at, updated_at) "
            "VALUES (?, 'Press 12', 'press 12', ?, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            (CHAT, file_id),
        )
        [(machine_id,)] = connection.execute("SELECT id FROM user_machines").fetchall()
    subprocess.run(
        [sys.executable, "-m", "durabot", "admin", "add-user", "alice", "--password", "correct horse battery"],
        env=base_env(DATABASE_URL=f"sqlite:///{sqlite_path}"), check=True, capture_output=True,
    )
    with httpx.Client(base_url=url) as client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        client.post("/login", data={"csrf": csrf.group(1), "name": "alice", "password": "correct horse battery"})
        assert f'src="/equipment/{machine_id}/photo"' in client.get("/equipment").text
        photo = client.get(f"/equipment/{machine_id}/photo")
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
        assert photo.content.startswith(b"\x89PNG")
        assert client.get("/equipment/999999/photo").status_code == 404
