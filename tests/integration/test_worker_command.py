"""`dispatchflow worker` as operators run it: what it logs when it starts."""

from __future__ import annotations

from tests.integration.conftest import Cluster
from tests.integration.polling import wait_for


def test_the_worker_logs_its_settings_once_with_secrets_masked(cluster: Cluster) -> None:
    """At info level the start-up log has one settings line, the key password masked."""
    worker = cluster.start_worker(log_level="info", ssl_keyfile_password="hunter2")
    lines = wait_for(
        lambda: [line for line in worker.log_tail(10**7).splitlines() if "settings: {" in line],
        lambda found: len(found) >= 1,
        timeout_s=30,
    )
    assert len(lines) == 1
    assert "'ssl_keyfile_password': '**********'" in lines[0]
    assert "hunter2" not in worker.log_tail(10**7)
