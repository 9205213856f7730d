"""Session-wide hooks for the whole test tree."""

from __future__ import annotations

import pytest

from tests.integration.broker_choice import broker_description


def pytest_report_header(config: pytest.Config) -> str | None:
    """Name the integration tests' broker once, in runs that may select integration tests.

    The hook lives here because pytest only asks the conftest files of the paths it starts
    from; the one in tests/integration/ would never be asked.
    """
    if config.getoption("markexpr", "").replace(" ", "") == "notintegration":
        return None
    return broker_description()
