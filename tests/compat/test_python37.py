"""The core's tests on Python 3.7 with the libraries Odoo 14 pins for it, as Odoo 14's
official image runs them (issue 8); `.venv37` is made by `./dev.sh test`."""

import os
import subprocess
import sys

import pytest
from bus_fixtures import ROOT, Cluster

VENV37 = ROOT / ".venv37" / "bin" / "python"
PINS = ROOT / "requirements-odoo14-py37.txt"
LIBRARIES = ("gevent", "greenlet", "psycopg2-binary", "Werkzeug")
# The core's tests that start no standalone server (that one needs a newer Python).
NEEDS_SERVER = ("test_server", "test_multiprocess")
CORE_TESTS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests" / "core").glob("test_*.py")
                    if not path.name.startswith(NEEDS_SERVER))


@pytest.fixture(scope="module")
def python37() -> str:
    if not VENV37.exists():
        pytest.fail(f"no {VENV37.parent.parent}: `./dev.sh test` makes it from a Python 3.7 (pyenv install 3.7.16)")
    return str(VENV37)


def test_the_python37_venv_has_odoo14s_pins(python37):
    pins = dict(line.split("==") for line in PINS.read_text().splitlines() if line.split("==")[0] in LIBRARIES)
    probe = ("import sys, gevent, greenlet, psycopg2, werkzeug; print('%d.%d' % sys.version_info[:2],"
             " gevent.__version__, greenlet.__version__, psycopg2.__version__.split()[0], werkzeug.__version__)")
    found = subprocess.run([python37, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.split() == ["3.7", *(pins[name] for name in LIBRARIES)]


@pytest.mark.timeout(600)
def test_the_core_tests_pass_on_python37(python37, pg: Cluster):
    assert CORE_TESTS
    # pytest 7 imports `-p` plugins before it applies the `pythonpath` setting.
    env = dict(os.environ, BUS_DSN=pg.dsn, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests" / "support")]))
    done = subprocess.run([python37, "-m", "pytest", "-q", *CORE_TESTS], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=540)
    sys.stdout.write(done.stdout)
    assert done.returncode == 0, done.stdout[-5000:]
