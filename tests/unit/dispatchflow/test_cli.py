import pytest

from dispatchflow.cli import build_parser, main


def test_every_command_module_registers_without_error() -> None:
    """The CLI builds with every package's subcommands attached."""
    parser = build_parser()
    assert parser.prog == "dispatchflow"


def test_no_command_prints_help_and_returns_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Running with no command is a usage error that shows the help."""
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
