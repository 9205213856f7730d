"""Operator mistakes on the real command line: one line naming the problem, exit code 1."""

from __future__ import annotations

import pytest

from tests.unit.dispatchflow.cli_process import one_line_error, run_cli

#: A loopback port nothing listens on (connections are refused at once).
NO_BROKER = "127.0.0.1:1"
#: Commands that read settings, with arguments that make them go to a broker.
SETTINGS_COMMANDS = {
    "worker": ("worker", "--broker", NO_BROKER),
    "topics-apply": ("topics", "apply", "--broker", NO_BROKER),
    "topics-verify": ("topics", "verify", "--broker", NO_BROKER),
    "check": ("check", "--broker", NO_BROKER),
    "demo": ("demo", "--no-ops"),
}
BROKER_COMMANDS = {k: v for k, v in SETTINGS_COMMANDS.items() if k != "demo"}


@pytest.mark.parametrize("args", SETTINGS_COMMANDS.values(), ids=SETTINGS_COMMANDS.keys())
def test_an_invalid_setting_is_one_line_naming_it(args: tuple[str, ...]) -> None:
    """DISPATCHFLOW_LEASE_S=abc: one stderr line naming the variable and its value."""
    line = one_line_error(run_cli(*args, env={"DISPATCHFLOW_LEASE_S": "abc"}))
    assert "DISPATCHFLOW_LEASE_S" in line
    assert "'abc'" in line


def test_an_invalid_web_port_is_one_line_naming_it() -> None:
    """DISPATCHFLOW_WEB_PORT=abc on the worker: one line naming the web port setting."""
    line = one_line_error(run_cli("worker", env={"DISPATCHFLOW_WEB_PORT": "abc"}))
    assert "DISPATCHFLOW_WEB_PORT" in line


@pytest.mark.parametrize("args", SETTINGS_COMMANDS.values(), ids=SETTINGS_COMMANDS.keys())
def test_a_misspelt_setting_is_refused_with_the_closest_real_one(args: tuple[str, ...]) -> None:
    """DISPATCHFLOW_WEB_PROT is refused: the line names it and suggests DISPATCHFLOW_WEB_PORT."""
    line = one_line_error(run_cli(*args, env={"DISPATCHFLOW_WEB_PROT": "7000"}))
    assert "DISPATCHFLOW_WEB_PROT" in line
    assert "did you mean DISPATCHFLOW_WEB_PORT" in line


@pytest.mark.parametrize("args", BROKER_COMMANDS.values(), ids=BROKER_COMMANDS.keys())
def test_an_unreachable_broker_is_one_line_naming_it(args: tuple[str, ...]) -> None:
    """No broker at the address: one line naming the address, no traceback."""
    line = one_line_error(run_cli(*args))
    assert NO_BROKER in line
    assert "broker" in line


def test_a_secret_in_an_invalid_setting_is_not_echoed() -> None:
    """A refused secret's value never reaches the terminal."""
    env = {"DISPATCHFLOW_SECURITY_PROTOCOL": "SASL_SSL", "DISPATCHFLOW_SASL_PASSWORD": "hunter2"}
    line = one_line_error(run_cli("check", "--broker", NO_BROKER, env=env))
    assert "hunter2" not in line
    assert "sasl_mechanism" in line
