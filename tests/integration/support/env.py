# env: one test's world (its database, the standard data's ids, the daemons it starts).
"""Env is what the `env` and `bare_env` fixtures of conftest.py yield; a test module that needs a
world of its own (module scope, its own cluster) builds one directly."""

import pytest

from support.build import run_cli
from support.daemon import Daemon, config_text
from support.net import free_port


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
        # config every daemon of this test starts with, under its own overrides (a module
        # whose requests are built at collection time sets a signature tolerance here)
        self.defaults = {}
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
        path.write_text(config_text(values))
        return path

    def migrate(self):
        conf = self.write_conf("migrate", {"database_url": self.database_url,
                                           "state_dir": str(self.tmp),
                                           "listen": "127.0.0.1:%d" % free_port(),
                                           "admin_listen": "127.0.0.1:%d" % free_port()})
        r = run_cli("-c", conf, "--migrate")
        assert r.returncode == 0, "--migrate failed (%d):\n%s%s" % (r.returncode, r.stdout,
                                                                     r.stderr)
        return r

    def daemon(self, overrides=None, database_url=None, name=None, **daemon_args):
        """A configured, not yet started daemon; daemon_args go to Daemon (extra_env, unset,
        valgrind)."""
        name = name or "d%d" % (len(self.daemons) + 1)
        if self.defaults:
            overrides = dict(self.defaults, **(overrides or {}))
        d = Daemon(self.tmp, name, database_url or self.database_url, overrides, **daemon_args)
        self.daemons.append(d)
        return d

    def start(self, overrides=None, database_url=None, name=None, wait_ready=True, **daemon_args):
        return self.daemon(overrides, database_url, name, **daemon_args).start(
            wait_ready=wait_ready)

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


def env_daemon(env, overrides=None, extra_env=None, unset=(), name=None):
    """Like env.daemon(), with extra environment; registered for the end-of-test checks."""
    return env.daemon(overrides, name=name, extra_env=extra_env, unset=unset)
