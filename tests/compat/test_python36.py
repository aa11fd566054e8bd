"""Every file Odoo imports compiles on Python 3.6, the oldest Python Odoo 14 runs on
(Ubuntu 18.04). "What Odoo imports" is found by following the imports from the addon's
`__init__.py` and its Odoo tests' package, so it stays right as modules move."""

import ast
import glob
import os
import subprocess
from pathlib import Path
from typing import Iterator, Set

import pytest
from bus_fixtures import ROOT

ENTRY_POINTS = (ROOT / "__init__.py", ROOT / "tests" / "__init__.py")  # tests/: `odoo-bin --test-enable`
ADDON = "odoo.addons.bus."
PYTHON36 = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6.*/bin/python")))
COMPILE = """
import sys
for path in sys.argv[1:]:
    try:
        compile(open(path, encoding="utf-8").read(), path, "exec")
    except SyntaxError as error:
        print("%s:%s: %s" % (path, error.lineno, error.msg))
"""


def imported_files(entry_points=ENTRY_POINTS) -> Set[Path]:
    """The addon's files reachable by imports, relative (`from ..imbus import x`) or
    absolute (`odoo.addons.bus.x`), at module level or inside functions."""
    found: Set[Path] = set()
    todo = list(entry_points)
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.add(path)
        for target in _targets(path):
            todo.extend(_files_of(target))
    return found


def _targets(path: Path) -> Iterator[Path]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                base = path.parents[node.level - 1]
            elif (name + ".").startswith(ADDON):
                base, name = ROOT, name[len(ADDON):]
            else:
                continue
            module = base.joinpath(*name.split(".")) if name else base
            yield module
            yield from (module / alias.name for alias in node.names)  # `from . import models`
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(ADDON):
                    yield ROOT.joinpath(*alias.name[len(ADDON):].split("."))


def _files_of(module: Path) -> Iterator[Path]:
    """The files importing `module` runs: its packages' `__init__.py` and its own."""
    if ROOT not in (module, *module.parents):
        return
    folder = ROOT
    for part in module.relative_to(ROOT).parts:
        if (folder / "__init__.py").exists():
            yield folder / "__init__.py"
        folder = folder / part
    for candidate in (module.with_suffix(".py"), module / "__init__.py"):
        if candidate.exists():
            yield candidate


def test_the_import_walk_finds_the_adapters_and_the_core_they_use():
    files = {str(path.relative_to(ROOT)) for path in imported_files()}
    assert {"__init__.py", "models/bus.py", "models/res_partner.py", "controllers/main.py", "imbus/__init__.py",
            "imbus/dispatcher.py", "imbus/store.py", "tests/test_bus_model.py"} <= files
    assert not {name for name in files if name.startswith("imbus/bench/") or name == "imbus/__main__.py"}


@pytest.mark.skipif(not PYTHON36, reason="no Python 3.6 on this machine (~/.pyenv/versions/3.6.*)")
def test_every_file_odoo_imports_compiles_on_python36():
    files = sorted(str(path) for path in imported_files())
    done = subprocess.run([PYTHON36[-1], "-c", COMPILE, *files], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == "", done.stdout
