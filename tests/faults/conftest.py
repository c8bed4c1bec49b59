"""Fixtures for the crmd fault-injection and load tests (tests/faults).

Each test starts its own crmd (build/crmd, or $CRMD_BIN) on a database in its
own temporary directory; nothing is shared between tests.

CRMD_TEST_BACKEND=postgres (make faults-postgres, inside scripts/pg-cluster.sh
run) collects only the tests that run on PostgreSQL too (POSTGRES_TESTS),
each server on a new database of the cluster; the tests of several processes
on one PostgreSQL (POSTGRES_ONLY) are collected only then."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faultutil  # noqa: E402
import sigterm  # noqa: E402 (on the path faultutil sets)

POSTGRES_ONLY = ["test_kill_two_processes.py"]
POSTGRES_TESTS = ["test_kill_mixed.py", "test_webhook_kill.py"] + POSTGRES_ONLY

if faultutil.BACKEND not in ("sqlite", "postgres"):
    raise pytest.UsageError(f"CRMD_TEST_BACKEND must be sqlite or postgres, not {faultutil.BACKEND!r}")
if faultutil.on_postgres():
    if not faultutil.PG_URL:
        # A PostgreSQL run without PostgreSQL is a failure, never a skip.
        raise pytest.UsageError("CRMD_TEST_BACKEND=postgres needs CRMD_TEST_PG_URL "
                                "(run the tests through scripts/pg-cluster.sh run)")
    collect_ignore = sorted(p.name for p in Path(__file__).parent.glob("test_*.py")
                            if p.name not in POSTGRES_TESTS)
else:
    collect_ignore = POSTGRES_ONLY


def pytest_configure(config):
    sigterm.stop_as_on_ctrl_c(config)


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
