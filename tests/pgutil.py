"""PostgreSQL helpers shared by the API suite (tests/api) and the fault tests
(tests/faults) in their PostgreSQL runs: psql, and new databases on the
throwaway cluster that scripts/pg-cluster.sh run makes (CRMD_TEST_PG_URL)."""

import itertools
import os
import subprocess

PG_URL = os.environ.get("CRMD_TEST_PG_URL", "").rstrip("/")
_DBS = itertools.count(1)


def psql(url, sql, timeout=30):
    """Runs SQL with psql against a PostgreSQL URL; returns stdout (unaligned)."""
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"psql {sql!r}: {p.stderr}"
    return p.stdout


def pg_new_database(prefix="crmd"):
    """Creates an empty database on the test cluster; returns its URL.
    FILE_COPY copies template1's files as they are, which on the cluster's
    tmpfs costs less than PostgreSQL 15's default of copying it page by page
    through the WAL."""
    name = f"{prefix}_{os.getpid()}_{next(_DBS)}"
    psql(f"{PG_URL}/postgres", f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
    return f"{PG_URL}/{name}"


def pg_drop_database(url):
    """Drops a database that pg_new_database made, cutting any session still
    on it. Best effort: a test's clean-up, never its verdict; whatever is left
    goes with the cluster."""
    name = url.rsplit("/", 1)[1]
    assert name.replace("_", "").isalnum(), name
    subprocess.run(["psql", "-X", "-q", f"{PG_URL}/postgres", "-c",
                    f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                   capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
