"""Scraping and alerting: the ServiceMonitor finds the workers, every alert has a runbook."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tests.unit.charts.rendering import (
    CHART,
    NAMESPACE,
    alert_rules,
    every,
    one,
    pod_spec,
    render,
)

MONITORING_ON: dict[str, Any] = {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
}


def selected_services(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Services the ServiceMonitor's selector matches (same namespace, labels match)."""
    monitor = one(manifests, "ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    return [
        s for s in every(manifests, "Service") if wanted <= s["metadata"].get("labels", {}).items()
    ]


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def readme_anchors() -> set[str]:
    """Fragments of every heading of the chart README."""
    text = (CHART / "README.md").read_text(encoding="utf-8")
    return {github_anchor(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


def test_the_service_monitor_selects_exactly_one_service() -> None:
    """Prometheus finds one Service to scrape (not none, not the headless one twice)."""
    assert len(selected_services(render(MONITORING_ON))) == 1


def test_the_scraped_service_exposes_the_monitored_port_of_the_worker_pods() -> None:
    """The Service selected has the endpoint's port, routes to worker pods and their web port."""
    manifests = render(MONITORING_ON)
    (service,) = selected_services(manifests)
    endpoint = one(manifests, "ServiceMonitor")["spec"]["endpoints"][0]
    port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    pods = one(manifests, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    container_ports = {
        p["name"] for p in pod_spec(manifests, "StatefulSet")["containers"][0]["ports"]
    }
    assert service["spec"]["selector"].items() <= pods.items()
    assert port["targetPort"] in container_ports
    assert endpoint["path"] == "/metrics"


def test_an_alert_fires_when_prometheus_has_no_worker_to_scrape() -> None:
    """An `absent(up{job=...})` alert names the job Prometheus gives the scraped Service."""
    manifests = render(MONITORING_ON)
    (service,) = selected_services(manifests)
    job = f'job="{service["metadata"]["name"]}"'
    absent = [r for r in alert_rules(manifests) if re.search(r"absent\(\s*up\{", r["expr"])]
    assert absent and all(job in r["expr"] for r in absent)
    assert all(f'namespace="{NAMESPACE}"' in r["expr"] for r in absent)


def test_an_alert_fires_when_a_scraped_worker_stops_answering() -> None:
    """An `up == 0` alert covers a target Prometheus knows but cannot scrape."""
    manifests = render(MONITORING_ON)
    (service,) = selected_services(manifests)
    down = [r for r in alert_rules(manifests) if re.search(r"up\{[^}]*\}\s*==\s*0", r["expr"])]
    assert down and all(f'job="{service["metadata"]["name"]}"' in r["expr"] for r in down)


def test_every_alert_links_a_runbook_entry_of_the_chart_readme() -> None:
    """Each alert's `runbook_url` ends in an anchor that is a heading of the chart README."""
    anchors = readme_anchors()
    rules = alert_rules(render(MONITORING_ON))
    fragments = [urlsplit(r["annotations"].get("runbook_url", "")).fragment for r in rules]
    assert rules and all(f in anchors for f in fragments), (fragments, sorted(anchors))


def test_runbook_urls_start_with_the_configured_base() -> None:
    """`prometheusRule.runbookBaseUrl` is where every runbook link points."""
    base = "https://git.example.org/dispatchflow/charts/dispatchflow/README.md"
    values = {**MONITORING_ON, "prometheusRule": {"enabled": True, "runbookBaseUrl": base}}
    rules = alert_rules(render(values))
    assert all(r["annotations"]["runbook_url"].startswith(base + "#") for r in rules)
