"""The deploy files say what the README promises: PostgreSQL and two workers, each with its own journal and admin port."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_postgresql_a_migration_and_two_workers_that_wait_for_both() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "worker-1", "worker-2"}
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["migrate"]["command"] == ["durabot", "migrate"]
    for name in ("worker-1", "worker-2"):
        worker = services[name]
        assert worker["build"] == "." and worker["restart"] == "unless-stopped"
        assert worker["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
        url = worker["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url
        assert url == services["migrate"]["environment"]["DATABASE_URL"]


def test_each_worker_has_a_journal_volume_and_an_admin_port_of_its_own_on_localhost() -> None:
    document = compose()
    services = document["services"]
    journals = [services[name]["volumes"] for name in ("worker-1", "worker-2")]
    assert journals[0] != journals[1] and all(v[0].endswith(":/var/lib/durabot") for v in journals)
    assert {v[0].split(":")[0] for v in journals} <= set(document["volumes"])
    ports = [services[name]["ports"][0] for name in ("worker-1", "worker-2")]
    assert len(set(ports)) == 2 and all(p.startswith("127.0.0.1:") and p.endswith(":8090") for p in ports)
    assert services["worker-1"]["stop_grace_period"] == "30s"


def test_the_image_runs_the_service_as_a_plain_user_with_its_journal_on_a_volume_and_a_health_check() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    assert 'CMD ["durabot", "run"]' in lines
    assert "USER durabot" in lines and "VOLUME /var/lib/durabot" in lines
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "/healthz" in (ROOT / "Dockerfile").read_text()
    assert ".venv/" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_systemd_unit_runs_the_service_and_restarts_it_when_it_stops_itself() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "deploy" / "durabot.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("durabot run")
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert service["WorkingDirectory"] == "/var/lib/durabot" and service["EnvironmentFile"] == "/etc/durabot/env"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
