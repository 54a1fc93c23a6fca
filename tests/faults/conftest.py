"""Fixtures of the fault scenarios: a PostgreSQL cluster and a Redis of their own, and the app's processes.

The cluster (initdb in a temporary directory) lives for the session and holds one migrated database that
each scenario copies (`CREATE DATABASE ... TEMPLATE`); each scenario gets a fresh Redis and starts the
gunicorn and Celery workers it needs. Everything is stopped in teardown. Where the binaries are missing,
the scenarios are skipped with the reason (or fail, with FAULTS_REQUIRED=1 as in .ci/run).

Each scenario reports what it measured through `measured`: printed, and listed again at the end of the
run under "fault scenarios".
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults import stack as st

MIGRATED = "faults_migrated"
_measured = pytest.StashKey[list[str]]()
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def fault_workdir() -> Iterator[Path]:
    reason = st.missing_prerequisites()
    if reason and os.environ.get("FAULTS_REQUIRED") == "1":
        pytest.fail(f"fault scenarios cannot run (FAULTS_REQUIRED=1): {reason}")
    if reason:
        pytest.skip(f"fault scenarios: {reason}")
    workdir = st.new_workdir()
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster(fault_workdir: Path) -> Iterator[st.PostgresCluster]:
    """A PostgreSQL cluster of the session's own, with the app's migrations applied in MIGRATED."""
    cluster = st.PostgresCluster(fault_workdir)
    try:
        cluster.start()
        cluster.create_database(MIGRATED)
        env = st.app_env(database_url=cluster.url(MIGRATED), cache_url="locmemcache://", broker_url="memory://")
        st.manage(env, "migrate", "--no-input")
        yield cluster
    finally:
        cluster.teardown()


@pytest.fixture
def make_stack(fault_workdir: Path, postgres_cluster: st.PostgresCluster) -> Iterator[Callable[..., st.Stack]]:
    """Builds a scenario's stack: a copy of `template` (the migrated database by default) and a new Redis."""
    stacks: list[st.Stack] = []

    def make(template: str = MIGRATED) -> st.Stack:
        number = next(_numbers)
        workdir = fault_workdir / f"scenario-{number}"
        workdir.mkdir()
        database = f"faults_{number}"
        postgres_cluster.ensure_running()
        postgres_cluster.create_database(database, template=template)
        redis = st.RedisServer(workdir)
        stack = st.Stack(workdir=workdir, postgres=postgres_cluster, redis=redis, database=database)
        stacks.append(stack)
        redis.start()
        return stack

    yield make
    for stack in stacks:
        stack.teardown()


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Report one measurement of the running scenario."""
    lines = request.config.stash.setdefault(_measured, [])
    name = request.node.name

    def report(line: str) -> None:
        print(line)
        lines.append(f"{name}: {line}")

    return report


def pytest_terminal_summary(terminalreporter, config) -> None:
    lines = config.stash.get(_measured, [])
    if lines:
        terminalreporter.section("fault scenarios: what was measured")
        for line in lines:
            terminalreporter.write_line(line)
