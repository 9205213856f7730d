"""`dispatchflow broker`: options, and the errors it gives before starting anything."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dispatchflow.cli import main


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_broker_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` lists kind, port, nodes, SASL_SSL and the run folder."""
    with pytest.raises(SystemExit) as exited:
        main(["broker", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--kind {embedded,kafka}", "--port", "--nodes {1,3}", "--sasl-ssl", "--run-dir"):
        assert option in text


def test_three_nodes_need_the_kafka_kind(capsys: pytest.CaptureFixture[str]) -> None:
    """`--nodes 3` on the (default) embedded broker is a usage error on one line."""
    assert main(["broker", "--nodes", "3"]) == 2
    assert "--nodes 3 needs --kind kafka" in _one_line_error(capsys)


def test_sasl_ssl_needs_the_kafka_kind(capsys: pytest.CaptureFixture[str]) -> None:
    """`--sasl-ssl` with `--kind embedded` is a usage error on one line."""
    assert main(["broker", "--kind", "embedded", "--sasl-ssl"]) == 2
    assert "--sasl-ssl needs --kind kafka" in _one_line_error(capsys)


def test_a_port_out_of_range_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Port 70000 is refused before any broker starts."""
    assert main(["broker", "--kind", "kafka", "--port", "70000"]) == 2
    assert "--port 70000 is not a TCP port" in _one_line_error(capsys)


def test_kafka_without_java_fails_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No `java` on PATH: exit 1 and one line naming Java 17, no traceback."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["broker", "--kind", "kafka"]) == 1
    assert "`java` not found on PATH" in _one_line_error(capsys)


def test_the_broker_command_restores_the_callers_signal_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the command returns, SIGINT and SIGTERM are handled as before it ran."""
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    monkeypatch.setenv("PATH", str(tmp_path))
    main(["broker", "--kind", "kafka"])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
