"""Resource names: `fullnameOverride` and `nameOverride` are honoured everywhere."""

from __future__ import annotations

from typing import Any

import yaml

from tests.unit.charts.rendering import EVERYTHING_ON, RELEASE, one, pod_spec, render

SASL_TLS = {
    "broker": {
        "securityProtocol": "SASL_SSL",
        "sasl": {"mechanism": "SCRAM-SHA-512", "existingSecret": "kafka-user"},
        "tls": {"existingSecret": "kafka-ca"},
    }
}


def everything(**values: Any) -> list[dict[str, Any]]:
    """Every optional manifest, SASL and TLS included, rendered with `values` on top."""
    return render({**EVERYTHING_ON, **SASL_TLS, **values})


def test_full_name_override_names_every_resource() -> None:
    """With `fullnameOverride`, every resource name starts with it."""
    manifests = everything(fullnameOverride="dispatch-eu")
    names = [m["metadata"]["name"] for m in manifests]
    assert names and all(n.startswith("dispatch-eu") for n in names), names


def test_full_name_override_leaves_no_release_derived_name_behind() -> None:
    """No reference (service name, scale target, auth, account) keeps the default name."""
    text = yaml.safe_dump_all(everything(fullnameOverride="dispatch-eu"))
    assert f"{RELEASE}-dispatchflow" not in text


def test_name_override_changes_the_name_label_and_the_release_scoped_name() -> None:
    """`nameOverride` replaces the chart name in labels and in the release-scoped name."""
    manifests = render({"nameOverride": "dispatcher"})
    statefulset = one(manifests, "StatefulSet")
    assert statefulset["metadata"]["name"] == f"{RELEASE}-dispatcher"
    assert statefulset["metadata"]["labels"]["app.kubernetes.io/name"] == "dispatcher"
    assert pod_spec(manifests, "StatefulSet")["serviceAccountName"] == f"{RELEASE}-dispatcher"
