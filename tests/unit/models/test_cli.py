from pathlib import Path

import pytest

from dispatchflow.cli import main


def test_eta_bench_rejects_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing input is a one-line error and exit code 1, not a traceback."""
    code = main(
        [
            "eta",
            "bench",
            "--dataset",
            "nyc",
            "--train",
            str(tmp_path / "nope.csv"),
            "--test",
            str(tmp_path / "nope.csv"),
            "--json",
            str(tmp_path / "out.json"),
        ]
    )
    assert code == 1
    assert capsys.readouterr().err.startswith("error: cannot read")


def test_evaluate_with_an_empty_registry_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Evaluating without any model version fails with a message."""
    code = main(
        [
            "evaluate",
            "--dataset",
            "nyc",
            "--registry",
            str(tmp_path / "reg"),
            "--train",
            "x.csv",
            "--test",
            "y.csv",
        ]
    )
    assert code == 1
    assert "no model versions" in capsys.readouterr().err


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
