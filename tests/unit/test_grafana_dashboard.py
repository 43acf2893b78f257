"""The Grafana dashboard in deploy/grafana/ is valid JSON whose every query names metrics pingstream exports."""
from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.metrics import WorkerCollector

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "pingstream.json"
#: what a sample's name adds to its family's: counters' _total, histograms' series
SUFFIX = re.compile(r"_(total|bucket|count|sum)$")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queried_metrics(board: dict) -> set[str]:
    """The family of every pingstream metric a panel queries."""
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    return {SUFFIX.sub("", name) for expr in exprs for name in re.findall(r"pingstream_[a-z0-9_]+", expr)}


def exported_families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    scraped = generate_latest(REGISTRY).decode()  # this process's own /metrics: every family pingstream declares
    worker_only = {family.name for family in WorkerCollector(None, None, None).describe()}  # read at scrape time
    queried = queried_metrics(dashboard())
    assert len(queried) >= 15
    assert queried <= exported_families(scraped) | worker_only, queried - exported_families(scraped) - worker_only


def test_every_panel_has_a_place_a_data_source_and_queries() -> None:
    board = dashboard()
    assert board["uid"] == "pingstream" and board["schemaVersion"] >= 30
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
            assert all(target["refId"] and target["expr"] for target in panel["targets"])
