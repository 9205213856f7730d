"""The layering rules, read from the source: what each package may import, and no cycles.

* The functional core (`contracts`, `features`, `models`, `dispatch`) imports nothing from the
  stream shell (`streams`), nor from Faust or Kafka clients; `simulators` imports nothing from
  `streams` either (it drives the core in process).
* No module imports itself through others (no cycle among modules), and no package imports a
  package that imports it back (`dispatchflow` holds both the settings every layer reads and the
  command line that loads every layer's commands by name, so it is left out of the package
  check).

Every import counts, at module level or inside a function, `TYPE_CHECKING` blocks included.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "features", "models", "dispatch", "simulators", "streams", "console")
ALL = (*PACKAGES, "dispatchflow")
CORE = ("contracts", "features", "models", "dispatch")
SHELL_LIBRARIES = ("faust", "mode", "aiokafka", "confluent_kafka", "streams")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of our packages and the names it imports (modules and `from` targets)."""
    found: dict[str, set[str]] = {}
    for package in ALL:
        for path in sorted((ROOT / package).rglob("*.py")):
            names: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
                    names.update(f"{node.module}.{alias.name}" for alias in node.names)
            found[_module_name(path)] = names
    return found


IMPORTS = _imports()


def _resolve(name: str) -> str | None:
    """The module of ours that `name` refers to (a module, or a name inside one), if any."""
    while name and name not in IMPORTS:
        name = name.rpartition(".")[0]
    return name or None


@pytest.mark.parametrize("package", [*CORE, "simulators"])
def test_a_core_package_imports_nothing_from_the_stream_shell(package: str) -> None:
    """No module of the package imports `streams` (nor, in the core, Faust or Kafka clients)."""
    banned = SHELL_LIBRARIES if package in CORE else ("streams",)
    offenders = sorted(
        f"{module} imports {name}"
        for module, names in IMPORTS.items()
        if module.split(".")[0] == package
        for name in names
        if name.split(".")[0] in banned
    )
    assert offenders == []


def test_no_module_imports_itself_through_others() -> None:
    """The module import graph has no cycle."""
    graph = {
        m: {r for n in names if (r := _resolve(n)) not in (None, m)} for m, names in IMPORTS.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_package_imports_a_package_that_imports_it() -> None:
    """Among the packages (the command line aside), imports go one way only."""
    depends: dict[str, set[str]] = defaultdict(set)
    for module, names in IMPORTS.items():
        package = module.split(".")[0]
        for name in names:
            target = name.split(".")[0]
            if package in PACKAGES and target in PACKAGES and target != package:
                depends[package].add(target)
    both_ways = sorted(
        (a, b)
        for a, b in itertools.combinations(PACKAGES, 2)
        if b in depends[a] and a in depends[b]
    )
    assert both_ways == []
