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

import helpers  # noqa: E402
from helpers import Daemon, PgCluster, callrouted_bin, run_cli  # noqa: E402


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


class Env:
    """One test's world: its database, connection, data ids, and the daemons it starts."""

    def __init__(self, pg, tmp_path, item):
        self.pg = pg
        self.tmp = tmp_path
        self.item = item
        self.dbname = None
        self.conn = None
        self.ids = None
        self.daemons = []
        item._callrouted_daemons = self.daemons

    @property
    def database_url(self):
        return self.pg.url(self.dbname)

    def create_db(self):
        self.dbname = self.pg.new_database()
        self.conn = self.pg.connect(self.dbname)
        return self.dbname

    def write_conf(self, name, values):
        path = self.tmp / (name + ".conf")
        path.write_text(helpers.config_text(values))
        return path

    def migrate(self):
        conf = self.write_conf("migrate", {"database_url": self.database_url,
                                           "state_dir": str(self.tmp),
                                           "listen": "127.0.0.1:%d" % helpers.free_port(),
                                           "admin_listen": "127.0.0.1:%d" % helpers.free_port()})
        r = run_cli("-c", conf, "--migrate")
        assert r.returncode == 0, "--migrate failed (%d):\n%s%s" % (r.returncode, r.stdout,
                                                                     r.stderr)
        return r

    def daemon(self, overrides=None, database_url=None, name=None):
        """A configured, not yet started daemon."""
        name = name or "d%d" % (len(self.daemons) + 1)
        d = Daemon(self.tmp, name, database_url or self.database_url, overrides)
        self.daemons.append(d)
        return d

    def start(self, overrides=None, database_url=None, name=None, wait_ready=True):
        return self.daemon(overrides, database_url, name).start(wait_ready=wait_ready)

    def sql(self, query, *args):
        return self.conn.execute(query, args)

    def finish(self):
        problems = []
        for d in self.daemons:
            if d.proc is None or d.checked:
                continue
            was_running = d.running()
            rc = d.stop()
            d.checked = True
            mine = []
            if was_running and rc != 0:
                mine.append("%s: exit code %r after SIGTERM (want 0)" % (d.name, rc))
            bad = d.bad_log_text()
            if bad:
                mine.append("%s: log contains %s" % (d.name, ", ".join(bad)))
            if mine:
                problems += mine + [d.log_tail(80)]
        if self.conn is not None:
            self.conn.close()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def env(pg, binary, tmp_path, request):
    """A fresh migrated database with the standard data set."""
    e = Env(pg, tmp_path, request.node)
    e.create_db()
    e.migrate()
    e.ids = helpers.insert_standard_data(e.conn)
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


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes tens of seconds (valgrind)")
