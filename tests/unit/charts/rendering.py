"""Rendering the chart without a helm binary, and picking manifests out of what it renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "dispatchflow"
RELEASE = "df"
NAMESPACE = "prod"
#: Every optional part of the chart switched on.
EVERYTHING_ON: dict[str, Any] = {
    "keda": {"enabled": True},
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "dashboards": {"enabled": True},
}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every manifest the chart renders with `values`, parsed."""
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return [
        doc
        for name, text in sorted(files.items())
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single manifest of `kind`."""
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, [m["kind"] for m in manifests]
    return found[0]


def every(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The manifests of `kind`."""
    return [m for m in manifests if m["kind"] == kind]


def pod_spec(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The pod spec of the single `kind` (StatefulSet or Job)."""
    spec: dict[str, Any] = one(manifests, kind)["spec"]["template"]["spec"]
    return spec


def worker(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The worker container of the StatefulSet."""
    container: dict[str, Any] = pod_spec(manifests, "StatefulSet")["containers"][0]
    return container


def alert_rules(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every alerting rule of the PrometheusRule."""
    groups = one(manifests, "PrometheusRule")["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]
