"""Fixtures for the crmd fault-injection and load tests (tests/faults).

Each test starts its own crmd (build/crmd, or $CRMD_BIN) on a database in its
own temporary directory; nothing is shared between tests."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faultutil  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _binary():
    b = faultutil.crmd_bin()
    if not os.access(b, os.X_OK):
        pytest.fail(f"crmd binary not found or not executable: {b} (run make, or set CRMD_BIN)",
                    pytrace=False)


@pytest.fixture
def crmd(tmp_path):
    """A factory of crmd servers in tmp_path; every one is stopped at the end."""
    made = []

    def make(name="srv", **kw):
        srv = faultutil.Crmd(tmp_path / f"{name}{len(made)}", **kw)
        made.append(srv)
        return srv

    yield make
    for s in made:
        try:
            s.close()
        except Exception:  # pragma: no cover - best effort cleanup
            s.kill()
