"""``core`` stays framework-free; dependencies point one way."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_core_imports_no_framework_statically():
    assert not _imports("core") & {"quart", "ray", "arq", "hypercorn", "api", "actors", "workers"}


def test_importing_every_core_module_loads_no_framework():
    code = (
        "import importlib, pkgutil, sys, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in ('quart', 'ray', 'arq') if n in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""


def test_api_actors_workers_do_not_import_each_other():
    assert not _imports("actors") & {"api", "workers"}
    assert not _imports("workers") & {"api"}
    # The api reaches actors only through the package's public entry module.
    for path in (ROOT / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("actors.")
            ):
                raise AssertionError(f"{path} imports {node.module}; use 'from actors import ...'")
    assert not _imports("api") & {"workers"}
