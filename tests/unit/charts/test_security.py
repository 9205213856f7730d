"""Pod identity and privileges: a service account of its own, non-root, no capabilities."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.charts.rendering import every, one, pod_spec, render

KINDS = ("StatefulSet", "Job")


def test_the_workers_run_as_the_service_account_the_chart_creates() -> None:
    """By default the chart creates a ServiceAccount (a regular resource) the workers use."""
    manifests = render()
    accounts = {
        a["metadata"]["name"]: a
        for a in every(manifests, "ServiceAccount")
        if "helm.sh/hook" not in a["metadata"].get("annotations", {})
    }
    assert list(accounts) == [pod_spec(manifests, "StatefulSet")["serviceAccountName"]]


def test_the_topics_job_runs_as_an_account_a_hook_creates_before_it() -> None:
    """The job is a pre-install hook: its account is a hook too, with a lower weight."""
    manifests = render()
    job = one(manifests, "Job")
    name = pod_spec(manifests, "Job")["serviceAccountName"]
    (account,) = [a for a in every(manifests, "ServiceAccount") if a["metadata"]["name"] == name]
    hook, job_hook = account["metadata"]["annotations"], job["metadata"]["annotations"]
    assert set(hook["helm.sh/hook"].split(",")) >= set(job_hook["helm.sh/hook"].split(","))
    assert int(hook["helm.sh/hook-weight"]) < int(job_hook["helm.sh/hook-weight"])


def test_an_existing_service_account_is_used_and_none_is_created() -> None:
    """`serviceAccount.create: false` with a name uses that account and renders none."""
    manifests = render({"serviceAccount": {"create": False, "name": "platform-workers"}})
    assert every(manifests, "ServiceAccount") == []
    assert {pod_spec(manifests, k)["serviceAccountName"] for k in KINDS} == {"platform-workers"}


def test_the_service_account_token_is_not_mounted_by_default() -> None:
    """The workers call no Kubernetes API, so no token is mounted unless asked for."""
    manifests = render()
    assert all(
        a["automountServiceAccountToken"] is False for a in every(manifests, "ServiceAccount")
    )
    assert all(pod_spec(manifests, k)["automountServiceAccountToken"] is False for k in KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_containers_drop_every_privilege(kind: str) -> None:
    """Non-root, no privilege escalation, no capabilities, read-only root filesystem."""
    context: dict[str, Any] = pod_spec(render(), kind)["containers"][0]["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("kind", KINDS)
def test_pods_use_the_runtime_default_seccomp_profile(kind: str) -> None:
    """The pod-level security context restricts system calls to the runtime's default."""
    context = pod_spec(render(), kind)["securityContext"]
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["runAsNonRoot"] is True


@pytest.mark.parametrize("persistence", [True, False], ids=["claim", "emptydir"])
def test_the_state_and_temp_directories_stay_writable(persistence: bool) -> None:
    """With a read-only root, RocksDB's /data and /tmp are writable volumes."""
    manifests = render({"persistence": {"enabled": persistence}})
    mounts = {
        m["mountPath"]: m
        for m in pod_spec(manifests, "StatefulSet")["containers"][0]["volumeMounts"]
    }
    assert not mounts["/data"].get("readOnly", False)
    assert not mounts["/tmp"].get("readOnly", False)
