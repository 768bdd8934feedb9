"""The generated Prometheus and Alertmanager configs of the local launchers (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.alertmanager import webhook_config
from deploy.local.prometheus import ScrapeJob, prometheus_config, scrape_jobs


def test_jobs_from_a_mapping_of_job_to_addresses() -> None:
    jobs = scrape_jobs({"carts-sockshop-dev": ["127.0.0.1:8081", "127.0.0.1:8082"]})
    assert jobs == [ScrapeJob("carts-sockshop-dev", ("127.0.0.1:8081", "127.0.0.1:8082"))]


def test_config_scrapes_every_second_with_rules_and_alertmanager(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    config = prometheus_config(
        [ScrapeJob("carts-sockshop-dev", ["127.0.0.1:8081"], labels={"stage": "dev"})],
        rule_files=[rules],
        alertmanager_url="http://127.0.0.1:19195",
    )
    assert config["global"]["scrape_interval"] == "1s"
    assert config["rule_files"] == [str(rules)]
    assert config["scrape_configs"] == [
        {
            "job_name": "carts-sockshop-dev",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["127.0.0.1:8081"], "labels": {"stage": "dev"}}],
        }
    ]
    assert config["alerting"] == {
        "alertmanagers": [{"scheme": "http", "static_configs": [{"targets": ["127.0.0.1:19195"]}]}]
    }


def test_target_files_become_file_discovery() -> None:
    (entry,) = prometheus_config([ScrapeJob("carts", target_files=["/x/carts.json"])])["scrape_configs"]
    assert entry["file_sd_configs"] == [{"files": ["/x/carts.json"], "refresh_interval": "1s"}]
    assert "static_configs" not in entry


def test_no_alerting_block_without_alertmanager() -> None:
    assert "alerting" not in prometheus_config([])


def test_duplicate_job_names_are_refused() -> None:
    with pytest.raises(ValueError, match="carts appear"):
        prometheus_config([ScrapeJob("carts", ["a:1"]), ScrapeJob("carts", ["b:1"])])


def test_alertmanager_url_without_host_is_refused() -> None:
    with pytest.raises(ValueError, match=r"must look like http://127\.0\.0\.1:19195"):
        prometheus_config([], alertmanager_url="127.0.0.1:19195")


def test_webhook_config_routes_severity_webhook_alerts_to_the_bridge() -> None:
    config = webhook_config("http://127.0.0.1:8080/alerts")
    (route,) = config["route"]["routes"]
    assert route["matchers"] == ['severity="webhook"']
    receiver = next(r for r in config["receivers"] if r["name"] == route["receiver"])
    assert receiver["webhook_configs"][0]["url"] == "http://127.0.0.1:8080/alerts"
