"""The observability profile stays in step with the code: Prometheus scrapes every
service compose runs, on the port it listens on, and the dashboard draws every metric
family the services report."""

from __future__ import annotations

import json
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML comes with schemathesis (dev)

from shared.metrics import exposition
from shared.settings import REPO
from tests.scrapes import families

OBSERVABILITY = REPO / "infra" / "observability"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def test_prometheus_scrapes_every_replica_of_every_service_on_its_port() -> None:
    services = compose()["services"]
    listening = {
        name: service["expose"][0] if "expose" in service else service["ports"][0].split(":")[-1]
        for name, service in services.items()
        if service.get("command", [None])[0] == "python"
    }
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    scraped = {
        name: str(discovery["port"])
        for job in config["scrape_configs"]
        for discovery in job["dns_sd_configs"]
        for name in discovery["names"]
    }

    assert listening == scraped
    assert set(listening) == {"identity", "billing", "assets", "apikeys", "gateway"}


def test_the_dashboard_draws_every_metric_family_from_the_provisioned_data_source() -> None:
    dashboard = json.loads((OBSERVABILITY / "grafana" / "dashboards" / "atrium.json").read_text())
    datasources = yaml.safe_load(
        (OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    queries = " ".join(target["expr"] for panel in panels for target in panel["targets"])

    reported = {name for name in families(exposition()) if name.startswith("atrium_")}
    assert reported
    assert not {name for name in reported if name not in queries}
    assert {panel["datasource"]["uid"] for panel in panels} == {
        source["uid"] for source in datasources["datasources"]
    }


def test_the_observability_profile_mounts_what_the_repository_provides() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), volume
