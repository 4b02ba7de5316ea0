# replica: a PostgreSQL primary and a streaming hot standby (pg_basebackup -R), for failover tests.
"""PrimaryStandby: a primary (a RestartablePg) and a hot standby made from it with
pg_basebackup -R, streaming through WalProxy, a TCP relay between the two whose flow can be
held (the WAL the primary writes then does not reach the standby: a standby "behind").
Replay can be paused on the standby (pg_wal_replay_pause()); the standby can be promoted."""

import shutil
import socket
import threading
import time

import psycopg

from support.cluster import RestartablePg
from support.net import free_port


class WalProxy:
    """127.0.0.1:port -> 127.0.0.1:target, both ways; hold() stops relaying (the bytes wait
    in the kernel's buffers), release() lets them go, cut() closes every relayed connection
    and drops what was held."""

    def __init__(self, target):
        self.target = target
        self.port = free_port()
        self.flowing = threading.Event()
        self.flowing.set()
        self.stopped = False
        self.conns = []
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def _pump(self, a, b):
        try:
            while not self.stopped:
                if not self.flowing.wait(0.05):
                    continue
                a.settimeout(0.05)
                try:
                    data = a.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                while not self.flowing.is_set() and not self.stopped:
                    time.sleep(0.01)  # held after the read: these bytes wait here
                if self.stopped:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def hold(self):
        self.flowing.clear()

    def release(self):
        self.flowing.set()

    def cut(self):
        """Close every relayed connection now (what was held is dropped)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            except OSError:
                pass

    def close(self):
        self.stopped = True
        self.cut()
        self.srv.close()


class Primary(RestartablePg):
    """A RestartablePg with synchronous_commit on, as a production primary runs: with it off
    the WAL of a commit waits up to wal_writer_delay (200 ms) before a walsender ships it."""

    def opts(self):
        return super().opts().replace("synchronous_commit=off", "synchronous_commit=on")

    def start(self):
        self._run("initdb", "-A", "trust", "--nosync", "-U", self.user, "-E", "UTF8",
                  "-D", str(self.datadir))
        self.start_again()


class Standby(RestartablePg):
    """A hot standby of `primary`, streaming through a WalProxy (synchronous_commit on, for
    when it is promoted)."""

    def opts(self):
        return super().opts().replace("synchronous_commit=off", "synchronous_commit=on")

    def __init__(self, primary):
        super().__init__()
        self.primary = primary
        self.proxy = WalProxy(primary.port)

    def start(self):
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U",
                  self.user, "-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast")
        with open(self.datadir / "postgresql.auto.conf", "a") as f:
            # through the proxy; report positions often (the drain waits on them)
            f.write("primary_conninfo = 'host=127.0.0.1 port=%d user=%s "
                    "application_name=standby1'\n" % (self.proxy.port, self.user))
            f.write("wal_receiver_status_interval = 1s\n")
        self.start_again()

    def promote(self):
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.datadir), "promote")

    def pause_replay(self):
        with self.connect() as c:
            c.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self):
        with self.connect() as c:
            c.execute("SELECT pg_wal_replay_resume()")

    def stop(self):
        self.proxy.close()
        super().stop()


class PrimaryStandby:
    """A primary and one hot standby, both on 127.0.0.1; url() is a multi-host libpq string."""

    def __init__(self):
        self.primary = Primary()
        self.standby = None

    def start(self):
        self.primary.start()
        self.standby = Standby(self.primary)
        self.standby.start()
        self.wait_streaming()

    def wait_streaming(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.primary.connect() as c:
                n = c.execute("SELECT count(*) FROM pg_stat_replication "
                              "WHERE state = 'streaming'").fetchone()[0]
            if n:
                return
            time.sleep(0.05)
        raise RuntimeError("the standby does not stream")

    def wait_replayed(self, timeout=10.0):
        """Until the standby has replayed everything the primary has written."""
        with self.primary.connect() as c:
            lsn = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.standby.connect() as c:
                ok = c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                               (lsn,)).fetchone()[0]
            if ok:
                return
            time.sleep(0.02)
        raise RuntimeError("the standby did not replay %s" % lsn)

    def url(self, dbname, attrs="read-write"):
        return ("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=%s "
                "target_session_attrs=%s connect_timeout=2"
                % (self.primary.port, self.standby.port, dbname, attrs))

    def new_database(self):
        name = self.primary.new_database()
        self.wait_replayed()
        return name

    def stop(self):
        for c in (self.standby, self.primary):
            if c is None:
                continue
            try:
                c.stop()
            except Exception:  # noqa: BLE001 - one already stopped: clean the other
                shutil.rmtree(c.dir, ignore_errors=True)


def pg_is_in_recovery(cluster):
    with psycopg.connect(cluster.url(), autocommit=True) as c:
        return c.execute("SELECT pg_is_in_recovery()").fetchone()[0]

