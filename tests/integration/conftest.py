# conftest: fixtures of the integration suite: shared PostgreSQL cluster, per-test database, daemons.
"""pytest fixtures.

Environment:
  CALLROUTED_BIN       the binary under test (default build/bin/callrouted)
  CALLROUTED_SANITIZE  1: sanitizer options for the daemon, longer timeouts
  CALLROUTED_TSAN      1: ThreadSanitizer options for the daemon (TSAN_OPTIONS), longer
                       timeouts; a "ThreadSanitizer" report in a daemon's log fails the test
  CALLROUTED_VALGRIND  1: run the daemon under valgrind --error-exitcode=99
  CALLROUTED_PG_BIN    PostgreSQL's bin directory (default /usr/lib/postgresql/15/bin)
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.build import callrouted_bin  # noqa: E402
from support.cluster import PgCluster, RestartablePg  # noqa: E402
from support.data import insert_standard_data  # noqa: E402
from support.env import Env  # noqa: E402
from support.replica import PrimaryStandby  # noqa: E402
from support.sandbox import SandboxProc  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in getattr(item, "_callrouted_daemons", []):
            rep.sections.append(("callrouted %s log" % d.name, d.log_tail(80)))


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def binary():
    b = callrouted_bin()
    if not os.access(b, os.X_OK):
        pytest.fail("callrouted binary not found at %s (build it, or set CALLROUTED_BIN)" % b)
    return b


@pytest.fixture
def env(pg, binary, tmp_path, request):
    """A fresh migrated database with the standard data set."""
    e = Env(pg, tmp_path, request.node)
    e.create_db()
    e.migrate()
    e.ids = insert_standard_data(e.conn)
    yield e
    e.finish()


@pytest.fixture
def bare_env(pg, binary, tmp_path, request):
    """A fresh, empty database (no migrations applied)."""
    e = Env(pg, tmp_path, request.node)
    e.create_db()
    yield e
    e.finish()


@pytest.fixture
def daemon(env):
    """A daemon started on the standard data set, ready."""
    return env.start()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """tools/sandbox, one process for the test module."""
    s = SandboxProc(tmp_path_factory.mktemp("sandbox")).start()
    yield s
    s.stop()


@pytest.fixture
def sb(sandbox):
    """The module's sandbox with its requests and faults cleared (a module that also wants its
    numbers, calls and agents forgotten overrides this with sandbox.reset())."""
    sandbox.clear()
    return sandbox


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes tens of seconds (valgrind)")


@pytest.fixture
def own_pg():
    """A PostgreSQL cluster of this test's own, which it may stop and start."""
    c = RestartablePg()
    c.start()
    yield c
    c.stop()


@pytest.fixture
def own_env(own_pg, binary, tmp_path, request):
    """Like env, on a PostgreSQL cluster of this test's own (which it stops and starts)."""
    e = Env(own_pg, tmp_path, request.node)
    e.create_db()
    e.migrate()
    e.ids = insert_standard_data(e.conn)
    yield e
    e.finish()


@pytest.fixture
def ha(binary, tmp_path, request):
    """A primary and a streaming hot standby of this test's own (support/replica.py), the
    standard data set on the primary, replayed on the standby; env.ps is the pair."""
    ps = PrimaryStandby()
    try:
        ps.start()
    except Exception:
        ps.stop()
        raise
    e = Env(ps.primary, tmp_path, request.node)
    e.create_db()
    e.migrate()
    e.ids = insert_standard_data(e.conn)
    ps.wait_replayed()
    e.ps = ps
    yield e
    try:
        e.finish()
    finally:
        ps.stop()
