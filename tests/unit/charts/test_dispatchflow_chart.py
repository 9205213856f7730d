"""The Helm chart, rendered and linted without a helm binary, its manifests schema-checked."""

import argparse
import json
import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from contracts.topics import DEFAULT_TOPICS_FILE, load_topics
from dispatchflow.cli import build_parser
from dispatchflow.settings import ENV_PREFIX, Settings
from streams.metrics import Metrics
from streams.telemetry import PrometheusTelemetry
from tests.unit.charts.rendering import CHART, EVERYTHING_ON, one, render, worker

KUBERNETES_VERSION = "1.30.0"
SASL = {
    "broker": {
        "securityProtocol": "SASL_SSL",
        "sasl": {"mechanism": "SCRAM-SHA-512", "existingSecret": "kafka-user"},
        "tls": {"existingSecret": "kafka-ca"},
    }
}


def env_names(container: dict[str, Any]) -> list[str]:
    """Names of the container's env vars."""
    return [e["name"] for e in container["env"]]


def test_the_chart_lints_without_errors() -> None:
    """`helm lint` finds no error (informational findings are allowed)."""
    assert helm.lint(str(CHART))["errors"] == []


@pytest.mark.parametrize(
    "values",
    [
        {},
        EVERYTHING_ON,
        SASL,
    ],
    ids=["defaults", "everything-on", "sasl-tls"],
)
def test_every_built_in_manifest_is_valid_for_kubernetes(values: dict[str, Any]) -> None:
    """StatefulSet, services, PDB and job pass the Kubernetes schemas; CRDs are left out."""
    # Built-in API groups have no dot (`v1`, `apps/v1`, `batch/v1`, `policy/v1`).
    built_in = [m for m in render(values) if "." not in m["apiVersion"].split("/")[0]]
    kinds = set()
    for manifest in built_in:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        kinds.add(manifest["kind"])
    assert {"StatefulSet", "Service", "PodDisruptionBudget", "Job"} <= kinds


def test_every_env_var_the_chart_sets_is_a_worker_setting() -> None:
    """A misspelt DISPATCHFLOW_* name would be ignored by the worker; none is."""
    names = env_names(worker(render(SASL)))
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert names and set(names) <= fields


def test_the_worker_and_job_arguments_parse_with_the_cli() -> None:
    """The container args are commands and flags `dispatchflow` accepts."""
    manifests = render({"broker": {"replication": 1}})
    parser = build_parser()
    job = one(manifests, "Job")["spec"]["template"]["spec"]["containers"][0]
    for args in (worker(manifests)["args"], job["args"]):
        assert isinstance(parser.parse_args([str(a) for a in args]), argparse.Namespace)


def test_each_pod_joins_with_its_own_name_as_static_member() -> None:
    """The group instance id comes from the pod name, so a restart keeps its partitions."""
    env = {e["name"]: e for e in worker(render())["env"]}
    ref = env["DISPATCHFLOW_CONSUMER_GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]
    assert ref["fieldPath"] == "metadata.name"


def test_probes_use_health_and_readiness_on_the_web_port() -> None:
    """Liveness on /healthz, readiness on /readyz, both on the port the worker listens on."""
    container = worker(render({"webPort": 7070}))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web"}
    assert container["ports"][0] == {"name": "web", "containerPort": 7070}
    assert env["DISPATCHFLOW_WEB_PORT"] == "7070"


def test_the_rank_server_s_port_is_exposed_and_set() -> None:
    """`rankPort` is a container port named rank, the worker's rank_port, and a Service port."""
    manifests = render({"rankPort": 7071})
    container = worker(manifests)
    env = {e["name"]: e.get("value") for e in container["env"]}
    services = [m for m in manifests if m["kind"] == "Service"]
    assert {"name": "rank", "containerPort": 7071} in container["ports"]
    assert env["DISPATCHFLOW_RANK_PORT"] == "7071"
    assert all(
        {"name": "rank", "port": 7071, "targetPort": "rank"} in s["spec"]["ports"] for s in services
    )


def test_state_lives_on_a_volume_per_pod() -> None:
    """RocksDB state is on a claim per pod, mounted at the worker's datadir."""
    manifests = render()
    spec = one(manifests, "StatefulSet")["spec"]
    env = {e["name"]: e.get("value") for e in worker(manifests)["env"]}
    mounts = {m["name"]: m["mountPath"] for m in worker(manifests)["volumeMounts"]}
    assert [c["metadata"]["name"] for c in spec["volumeClaimTemplates"]] == ["data"]
    assert mounts["data"] == env["DISPATCHFLOW_DATADIR"]


def test_the_default_partition_count_is_the_one_in_topics_yaml() -> None:
    """Replica caps use `partitions`; it must match the shard-keyed topics."""
    env = {e["name"]: e.get("value") for e in worker(render())["env"]}
    topics = {t.name: t for t in load_topics(DEFAULT_TOPICS_FILE).topics}
    assert int(env["DISPATCHFLOW_PARTITIONS"]) == topics["order_events"].partitions


def test_keda_scales_the_statefulset_up_to_the_partition_count() -> None:
    """With KEDA on, the ScaledObject targets the StatefulSet, which leaves replicas to it."""
    manifests = render({"keda": {"enabled": True, "maxReplicas": 8}, "partitions": 8})
    scaled = one(manifests, "ScaledObject")["spec"]
    statefulset = one(manifests, "StatefulSet")
    assert scaled["scaleTargetRef"]["name"] == statefulset["metadata"]["name"]
    assert scaled["maxReplicaCount"] == 8
    assert "replicas" not in statefulset["spec"]
    assert scaled["triggers"][0]["metadata"]["consumerGroup"] == "dispatchflow"


@pytest.mark.parametrize(
    "values",
    [{"keda": {"enabled": True, "maxReplicas": 9}}, {"replicaCount": 9}],
    ids=["keda-max", "replicas"],
)
def test_more_workers_than_partitions_is_refused_with_a_reason(values: dict[str, Any]) -> None:
    """A worker beyond the partition count would own nothing: rendering fails and says why."""
    with pytest.raises(helm.HelmError, match="exceeds partitions"):
        render({"partitions": 8, **values})


def test_sasl_credentials_come_from_the_secret_for_workers_and_keda() -> None:
    """SASL user and password are secret references, for the workers and KEDA's lag query."""
    manifests = render({**SASL, "keda": {"enabled": True}})
    env = {e["name"]: e for e in worker(manifests)["env"]}
    assert env["DISPATCHFLOW_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kafka-user"
    auth = one(manifests, "TriggerAuthentication")["spec"]["secretTargetRef"]
    assert {a["parameter"] for a in auth} == {"username", "password", "ca"}
    trigger = one(manifests, "ScaledObject")["spec"]["triggers"][0]
    assert trigger["metadata"]["sasl"] == "scram_sha512"
    assert (
        trigger["authenticationRef"]["name"]
        == one(manifests, "TriggerAuthentication")["metadata"]["name"]
    )


def test_sasl_without_a_secret_is_refused_with_a_reason() -> None:
    """SASL needs a mechanism and a secret; rendering fails and says so."""
    with pytest.raises(helm.HelmError, match=r"needs broker\.sasl\.mechanism"):
        render({"broker": {"securityProtocol": "SASL_SSL"}})


def test_the_topics_job_applies_topics_yaml_before_install_and_upgrade() -> None:
    """A hook job runs `topics apply` for the release's app id."""
    job = one(render({"appId": "dispatch-eu"}), "Job")
    hooks = job["metadata"]["annotations"]["helm.sh/hook"]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert set(hooks.split(",")) == {"pre-install", "pre-upgrade"}
    assert args[:2] == ["topics", "apply"]
    assert args[args.index("--app-id") + 1] == "dispatch-eu"


def test_the_disruption_budget_and_services_select_only_workers() -> None:
    """The topics job's pod is not counted by the PDB nor served by the services."""
    manifests = render()
    job_labels = one(manifests, "Job")["spec"]["template"]["metadata"]["labels"]
    selectors = [one(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]]
    selectors += [s["spec"]["selector"] for s in manifests if s["kind"] == "Service"]
    pod_labels = one(manifests, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
        assert not selector.items() <= job_labels.items()


def test_bad_values_are_refused_by_the_values_schema() -> None:
    """An unknown policy is caught at render time, before anything reaches a cluster."""
    with pytest.raises(helm.HelmError):
        render({"worker": {"policy": "fastest"}})


def exposed_series() -> dict[str, set[str]]:
    """Every series name a worker exposes, with the label names of its metric."""
    metrics = Metrics()
    PrometheusTelemetry(metrics)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    series: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        collector = metrics.registry._names_to_collectors[family.name]
        labels = set(getattr(collector, "_labelnames", ()))
        for suffix in suffixes[family.type]:
            series[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


#: The scrape-health series Prometheus itself records for every target, with the target labels
#: the Prometheus Operator attaches.
SCRAPE_SERIES = {"up": {"job", "namespace", "instance", "pod", "service", "endpoint", "container"}}


def monitoring_expressions() -> list[str]:
    """PromQL of every dashboard panel and every alert rule."""
    manifests = render({"prometheusRule": {"enabled": True}, "dashboards": {"enabled": True}})
    board = json.loads(one(manifests, "ConfigMap")["data"]["dispatchflow-workers.json"])
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    rules = one(manifests, "PrometheusRule")["spec"]["groups"][0]["rules"]
    return exprs + [rule["expr"] for rule in rules]


def test_dashboards_and_alerts_query_only_series_the_workers_expose() -> None:
    """Each series a panel or alert reads is exported (or is `up`), with the labels it uses."""
    series = {**exposed_series(), **SCRAPE_SERIES}
    exprs = monitoring_expressions()
    assert len(exprs) >= 15
    for expr in exprs:
        names = re.findall(r"\bdispatchflow_[a-z0-9_]+", expr)
        names += ["up"] if re.search(r"\bup\{", expr) else []
        assert names and set(names) <= series.keys(), expr
        labels = set().union(*(series[n] for n in names))
        used = {
            label.strip()
            for group in re.findall(r"by \(([^)]*)\)", expr)
            for label in group.split(",")
        }
        used |= set(re.findall(r"([a-z_0-9]+)=\"", expr))
        assert used <= labels, (expr, used - labels)
