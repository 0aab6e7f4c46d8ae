"""The package's layout is its architecture: each folder of src/ganlab answers one question, and a
folder imports only from the folders below it (README, "Layout"); no module imports in a cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ganlab

PACKAGE = Path(ganlab.__file__).parent
# lowest first: a folder may import from itself and from the folders before it
LAYERS = ["parts", "config", "record", "quality", "training", "judging", "cli", "api"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_PATH = re.compile(r"ganlab(\.\w+)+")


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The ganlab modules `path` imports; with every node (not top_level_only), also those it names in a
    string (`python -m ganlab.x.y`, importlib): a process started that way depends on that module too."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ganlab"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ganlab")}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.fullmatch(node.value):
            found.add(node.value)
    return found


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_lives_in_a_folder_that_names_its_job():
    loose = sorted(m for m in MODULES if m.count(".") == 1 and layer(m) is None)
    assert loose == [], f"modules outside the layers {LAYERS}: {loose}"


def test_no_import_runs_upwards():
    upwards = []
    for module, path in MODULES.items():
        for target in imports(path):
            if layer(module) is not None and layer(target) is not None and layer(target) > layer(module):
                upwards.append(f"{module} imports {target}")
        if layer(module) is None:  # ganlab/__init__.py: below everything
            upwards += [f"{module} imports {t}" for t in imports(path, top_level_only=True) if layer(t) is not None]
    assert upwards == []


def test_a_module_named_in_a_string_counts_as_an_import(tmp_path):
    starts_the_cli = tmp_path / "m.py"
    starts_the_cli.write_text('import sys\ncommand = [sys.executable, "-m", "ganlab.cli", "train"]\n')
    assert "ganlab.cli" in imports(starts_the_cli)


def test_modules_import_each_other_without_cycles():
    graph = {m: {t for t in imports(p, top_level_only=True) if t in MODULES and t != m} for m, p in MODULES.items()}
    done, path = set(), []

    def visit(m: str) -> None:
        assert m not in path, "import cycle: " + " -> ".join(path[path.index(m):] + [m])
        if m in done:
            return
        path.append(m)
        for t in graph[m]:
            visit(t)
        path.pop()
        done.add(m)

    for m in graph:
        visit(m)


def test_every_name_a_run_folder_holds_is_documented():
    from ganlab.record.run_folder import OUTPUT_NAMES

    page = (PACKAGE.parents[1] / "docs" / "run-folder.md").read_text()
    assert [name for name in OUTPUT_NAMES if f"`{name}" not in page] == []
