from pathlib import Path

import pytest

from dispatchflow.cli import main


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            "eta bench --dataset nyc --train {tmp}/nope.csv --test {tmp}/nope.csv"
            " --json {tmp}/out.json",
            "cannot read",
        ),
        (
            "evaluate --dataset nyc --registry {tmp}/reg --train x.csv --test y.csv",
            "no model versions",
        ),
    ],
    ids=["eta bench of a missing file", "evaluate with an empty registry"],
)
def test_a_command_that_cannot_run_says_why_in_one_error_line(
    command: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing input or an empty registry is a one-line error and exit code 1, not a traceback."""
    code = main(command.format(tmp=tmp_path).split())
    assert code == 1
    assert capsys.readouterr().err.startswith(f"error: {message}")


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--help"],
        ["evaluate", "--help"],
        ["eta", "bench", "--help"],
        ["models", "promote", "--help"],
        ["bench", "eta", "--help"],
    ],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Each command explains itself under --help."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out
