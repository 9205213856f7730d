import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatchflow.cli import build_parser, main
from streams.cli import settings_from_args

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_every_command_module_registers_without_error() -> None:
    """The CLI builds with every package's subcommands attached."""
    parser = build_parser()
    assert parser.prog == "dispatchflow"


def test_no_command_prints_help_and_returns_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Running with no command is a usage error that shows the help."""
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def every_parser(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Each parser of the CLI (commands and their subcommands), with its command path."""
    yield " ".join(path) or "dispatchflow", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_parser(sub, (*path, name))


PARSERS = dict(every_parser(build_parser()))
HELPS = {name: p.format_help() for name, p in PARSERS.items()}


def option_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help entry `parser` prints for one option."""
    formatter = parser._get_formatter()
    formatter.add_argument(action)
    return formatter.format_help()


@pytest.mark.parametrize("command", HELPS.keys())
def test_no_help_shows_a_default_of_none(command: str) -> None:
    """Optional and required options alike never read `(default: None)`."""
    assert "(default: None)" not in HELPS[command]


@pytest.mark.parametrize("command", HELPS.keys())
def test_no_help_shows_a_path_of_the_source_checkout(command: str) -> None:
    """Defaults that are files of the package are described, not printed as local paths."""
    assert str(REPO_ROOT) not in "".join(HELPS[command].split())


def test_the_worker_help_gives_the_effective_web_port_default() -> None:
    """`--web-port` says 6066, the port the worker listens on when nothing is set."""
    options = " ".join(HELPS["worker"].split())
    assert (
        "--web-port WEB_PORT port of the HTTP views [env: DISPATCHFLOW_WEB_PORT; default: 6066]"
        in options
    )


@pytest.mark.parametrize(
    "command",
    [
        name
        for name, p in PARSERS.items()
        if any(a.required and a.option_strings for a in p._actions)
    ],
)
def test_required_options_show_no_default(command: str) -> None:
    """A required option's help entry mentions no default at all."""
    parser = PARSERS[command]
    required = [a for a in parser._actions if a.required and a.option_strings]
    assert all("default" not in option_help(parser, a) for a in required)


def test_the_log_level_flag_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`worker --log-level debug` wins over DISPATCHFLOW_LOG_LEVEL=warning."""
    monkeypatch.setenv("DISPATCHFLOW_LOG_LEVEL", "warning")
    args = build_parser().parse_args(["worker", "--log-level", "debug"])
    assert settings_from_args(args).log_level == "debug"


def test_the_log_level_flag_accepts_only_known_levels(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown level is a usage error naming the choices."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["worker", "--log-level", "verbose"])
    assert exited.value.code == 2
    assert "debug" in capsys.readouterr().err
