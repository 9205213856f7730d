"""The wheel and the image carry what the installed commands need, topics.yaml included."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.unit.charts.rendering import pod_spec, render

ROOT = Path(__file__).resolve().parents[2]
#: What a copy of the source tree for a build leaves out.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "bench-results",
    "demo-output",
    "reports",
    "*-data",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the source tree (no network, no isolation)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES, symlinks=True)
    out = tmp / "dist"
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), *offline, "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("dispatchflow-*.whl")
    return built


def test_the_wheel_carries_topics_yaml(wheel: Path) -> None:
    """contracts/topics.yaml is package data of the wheel."""
    assert "contracts/topics.yaml" in zipfile.ZipFile(wheel).namelist()


def test_the_default_topics_file_resolves_inside_the_installed_package(
    wheel: Path, tmp_path: Path
) -> None:
    """Imported from the unpacked wheel (not the source tree), DEFAULT_TOPICS_FILE exists there."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "from contracts.topics import DEFAULT_TOPICS_FILE, load_topics; "
        "print(DEFAULT_TOPICS_FILE); print(len(load_topics().topics))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    path, count = result.stdout.split()
    assert Path(path).is_relative_to(site)
    assert int(count) > 0


def test_the_repository_root_topics_yaml_is_the_packaged_one() -> None:
    """The documented `topics.yaml` at the root is the very file the package ships."""
    assert (ROOT / "topics.yaml").resolve() == (ROOT / "contracts" / "topics.yaml").resolve()


def test_the_chart_uses_the_topics_file_the_image_installs() -> None:
    """Neither the worker nor the topics job names a topics file outside the installed package."""
    manifests = render()
    for kind in ("StatefulSet", "Job"):
        args = [str(a) for a in pod_spec(manifests, kind)["containers"][0]["args"]]
        assert "--file" not in args and "--topics-file" not in args, (kind, args)


def test_the_image_copies_every_package_the_wheel_is_built_from() -> None:
    """The Dockerfile copies each package pyproject.toml includes before `pip install .`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert packages <= copied, sorted(packages - copied)
