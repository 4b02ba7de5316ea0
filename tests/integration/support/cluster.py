# cluster: a throwaway PostgreSQL cluster (one per session), and one that can be restarted.
"""PgCluster: initdb + pg_ctl in a temp dir on a free loopback port; RestartablePg: the same,
stoppable (-m fast) and startable again on its data."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from support.build import PG_BIN
from support.net import free_port


class PgCluster:
    """A throwaway PostgreSQL cluster in a temp dir, on a free loopback port."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="callrouted-pg-"))
        self.datadir = self.dir / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.as_postgres = os.geteuid() == 0
        self._n = 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args):
        cmd = [str(PG_BIN / args[0])] + list(args[1:])
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           cwd=str(self.dir), timeout=120)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode,
                                                        r.stdout.decode(errors="replace")))
        return r

    def start(self):
        self._run("initdb", "-A", "trust", "--nosync", "-U", self.user, "-E", "UTF8",
                  "-D", str(self.datadir))
        opts = ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200" % (self.port, self.dir))
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.datadir), "-l",
                  str(self.dir / "postgres.log"), "-o", opts, "start")

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, dbname="postgres", port=None):
        return "postgresql://%s@%s:%d/%s" % (self.user, self.host, port or self.port, dbname)

    def connect(self, dbname="postgres"):
        return psycopg.connect(self.url(dbname), autocommit=True)

    def new_database(self):
        self._n += 1
        name = "t_%d_%d" % (os.getpid(), self._n)
        with self.connect() as c:
            c.execute('CREATE DATABASE "%s"' % name)
        return name


class RestartablePg(PgCluster):
    """A PgCluster whose server can be stopped (-m fast) and started again on its data."""

    def opts(self):
        return ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200" % (self.port, self.dir))

    def stop_fast(self):
        self._run("pg_ctl", "-w", "-D", str(self.datadir), "-m", "fast", "stop")

    def start_again(self):
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.datadir), "-l",
                  str(self.dir / "postgres.log"), "-o", self.opts(), "start")
