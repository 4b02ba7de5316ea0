# test_progress: long work reports progress: full reload, journal replay, --migrate, callroutectl.
"""A full reload of many numbers, the journal replay at start and --migrate log progress lines
at a steady interval, with counts and a rate (CALLROUTED_PROGRESS_INTERVAL=0 makes every
check report, so the lines are there however fast this machine is; with the default 1 s, work
shorter than a second logs none); callroutectl's progress line is drawn on a terminal only,
never when its stderr is a pipe or with --json."""

import os
import pty
import re
import select
import struct
import subprocess
import tempfile
import threading

from support.admin_api import TOKEN_A, api, insert_tokens
from support.build import REPO, SLOW, callrouted_bin, daemon_env
from support.data import NUM_RET1
from support.ledger import new_id, post_retell, retell_event
from support.net import free_port
from support.polling import wait_for

FAST = {"CALLROUTED_PROGRESS_INTERVAL": "0"}
N_NUMBERS = 60000
N_RECORDS = 40000

RELOAD_LINE = re.compile(r"routes: full reload: (\d+) of (\d+) numbers \((\d+)%\), "
                         r"(\d+) numbers/s, ([0-9.]+) s")
REPLAY_LINE = re.compile(r"journal: replay: (\d+) records, (\d+) records/s, ([0-9.]+) s")
REPLAY_END = re.compile(r"journal: replay: (\d+) records in ([0-9.]+) s \((\d+) records/s\)")
MIGRATE_LINE = re.compile(r"migrate: (\d+) of (\d+) migrations \((\d+)%\), ([0-9]+) "
                          r"migrations/s, ([0-9.]+) s")


def load_numbers(env, n):
    r = subprocess.run([str(REPO / "tools" / "load-numbers"), env.database_url, str(n), "10"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120 * SLOW)
    assert r.returncode == 0, r.stdout
    return env.conn.execute("SELECT count(*) FROM phone_numbers WHERE status = 'active'"
                            ).fetchone()[0]


def wait_log(d, pattern, what):
    return wait_for(lambda: re.search(pattern, d.log()), 20.0 * SLOW, 0.05, what)[0]


def counts(lines, col=0):
    return [int(m.group(col + 1)) for m in lines]


# ---- the full reload ----

def test_full_reload_of_many_numbers_logs_progress(env):
    active = load_numbers(env, N_NUMBERS)
    assert active > N_NUMBERS
    d = env.start(extra_env=FAST)
    wait_log(d, r"routes: loaded \d+ numbers", "the first full reload")
    lines = list(RELOAD_LINE.finditer(d.log()))
    # one line per 4096 rows: active and released numbers in one count
    assert len(lines) >= active // 4096 - 1, d.log_tail(40)
    done = counts(lines)
    assert done == sorted(done) and len(set(done)) == len(done), done
    assert all(m.group(2) == lines[0].group(2) for m in lines), lines
    assert int(lines[0].group(2)) >= active, (lines[0].group(0), active)
    assert done[-1] <= int(lines[-1].group(2))
    assert all(int(m.group(4)) > 0 for m in lines), [m.group(0) for m in lines]
    pct = counts(lines, 2)
    assert pct == sorted(pct) and 0 <= pct[0] <= pct[-1] <= 100, pct
    # SIGHUP: the next full reload reports again, from the start
    before = len(lines)
    d.proc.send_signal(1)
    wait_for(lambda: len(re.findall(r"routes: loaded \d+ numbers", d.log())) >= 2,
             20.0 * SLOW, 0.05, "the SIGHUP full reload")
    assert len(list(RELOAD_LINE.finditer(d.log()))) >= 2 * before - 1


def test_short_reload_logs_no_progress(env):
    """The default interval (1 s): the standard data's reload takes milliseconds."""
    d = env.start()
    wait_log(d, r"routes: loaded \d+ numbers", "the first full reload")
    assert "full reload:" not in d.log(), d.log_tail(20)
    assert "journal: replay:" not in d.log(), d.log_tail(20)


# ---- the journal replay ----

_TABLE = []


def _crc_table():
    if not _TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _TABLE.append(c)
    return _TABLE


def _crc_raw(reg, data):
    t = _crc_table()
    for b in data:
        reg = t[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


class RecordCrc:
    """journal_crc(seq, payload) = CRC-32C(seq as 8 little-endian bytes || payload) for one
    payload and many seq: the register after the payload is linear in the register before it,
    so the payload is run 33 times, not once per record."""

    def __init__(self, payload):
        self.k = _crc_raw(0, payload)
        self.cols = [_crc_raw(1 << i, payload) ^ self.k for i in range(32)]

    def __call__(self, seq):
        reg = _crc_raw(0xFFFFFFFF, struct.pack("<Q", seq))
        out = self.k
        for i in range(32):
            if reg >> i & 1:
                out ^= self.cols[i]
        return out ^ 0xFFFFFFFF


def one_record(env):
    """(state dir, the payload of one real journal record): a call event answered while
    PostgreSQL is unreachable (test_journal_damage's way)."""
    a = env.start(name="seed")
    snap = a.state_dir / "routes.snapshot"
    wait_for(lambda: snap.exists() and snap.stat().st_size > 0, 10.0 * SLOW,
             what="the route snapshot")
    assert a.stop() == 0, a.log_tail()
    closed = env.pg.url(env.dbname, port=free_port())
    d = env.daemon({"state_dir": str(a.state_dir)}, database_url=closed, name="offline").start()
    r = post_retell(d, retell_event("call_ended", new_id("pr"), "inbound", NUM_RET1))
    assert r.status == 200, r
    assert d.stop() == 0, d.log_tail()
    segs = sorted((a.state_dir / "journal").glob("*.jnl"))
    assert len(segs) == 1, segs
    data = segs[0].read_bytes()
    length, _crc, seq = struct.unpack_from("<IIQ", data, 0)
    assert len(data) == 16 + length, len(data)
    return a.state_dir, data[16:], closed


def test_replay_of_a_big_journal_logs_progress(env):
    state, payload, closed = one_record(env)
    jdir = state / "journal"
    for p in jdir.iterdir():
        if p.is_file():
            p.unlink()
    crc = RecordCrc(payload)
    head = struct.Struct("<IIQ")
    with open(jdir / ("%016x.jnl" % 1), "wb") as f:
        for seq in range(1, N_RECORDS + 1):
            f.write(head.pack(len(payload), crc(seq), seq))
            f.write(payload)
    # PostgreSQL unreachable: nothing drains, the replay is all there is to see
    d = env.daemon({"state_dir": str(state)}, database_url=closed, name="replay",
                   extra_env=FAST).start()
    wait_log(d, r"journal: replayed 1 segment", "the replay's summary")
    log = d.log()
    assert "%d records to drain" % N_RECORDS in log, d.log_tail(20)
    lines = list(REPLAY_LINE.finditer(log))
    assert len(lines) >= N_RECORDS // 4096 - 1, d.log_tail(40)
    done = counts(lines)
    assert done == sorted(done) and done[-1] <= N_RECORDS, done
    assert all(int(m.group(2)) > 0 for m in lines), [m.group(0) for m in lines]
    end = REPLAY_END.search(log)
    assert end and int(end.group(1)) == N_RECORDS and int(end.group(3)) > 0, d.log_tail(20)
    assert d.stop() == 0, d.log_tail()


# ---- --migrate ----

def test_migrate_logs_progress(bare_env):
    conf = bare_env.write_conf("migrate", {"database_url": bare_env.database_url,
                                           "state_dir": str(bare_env.tmp),
                                           "listen": "127.0.0.1:%d" % free_port(),
                                           "admin_listen": "127.0.0.1:%d" % free_port()})
    e = daemon_env()
    e.update(FAST)
    r = subprocess.run([str(callrouted_bin()), "-c", str(conf), "--migrate"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e,
                       timeout=120 * SLOW)
    assert r.returncode == 0, r.stdout
    lines = list(MIGRATE_LINE.finditer(r.stdout))
    total = len(re.findall(r"migrate: applied ", r.stdout))
    assert total >= 2 and len(lines) == total, r.stdout
    assert counts(lines) == list(range(1, total + 1)), r.stdout
    assert all(int(m.group(2)) == total for m in lines), r.stdout
    assert re.search(r"migrate: %d migrations in [0-9.]+ s \(\d+ migrations/s\)" % total,
                     r.stdout), r.stdout
    # nothing to do: no progress
    r = subprocess.run([str(callrouted_bin()), "-c", str(conf), "--migrate"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e,
                       timeout=120 * SLOW)
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout
    assert not MIGRATE_LINE.search(r.stdout), r.stdout


# ---- callroutectl ----

def ctl_bin():
    return callrouted_bin().parent / "callroutectl"


def ctl_env(d, token):
    e = dict(os.environ)
    e.update(FAST)
    e["CALLROUTED_URL"] = "http://127.0.0.1:%d" % d.admin_port
    e["CALLROUTED_TOKEN"] = token
    return e


def run_on_pty(args, env, timeout=30.0):
    """Run with stderr on a pseudo-terminal (stdout a pipe): (rc, stdout, what stderr drew)."""
    master, slave = pty.openpty()
    out = tempfile.TemporaryFile()
    p = subprocess.Popen(args, stdout=out, stderr=slave, env=env)
    os.close(slave)
    drawn = b""
    while True:
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    rc = p.wait(timeout)
    os.close(master)
    out.seek(0)
    return rc, out.read().decode(), drawn.decode(errors="replace")


def test_callroutectl_progress_only_on_a_terminal(env):
    insert_tokens(env)
    # a few pages of agency A's numbers
    aid, acct = env.ids.agency_a, env.ids.acct_retell
    env.sql("INSERT INTO phone_numbers (agency_id, account_id, provider, e164) "
            "SELECT %s, %s, 'retell', '+1646' || lpad(g::text, 7, '0') "
            "FROM generate_series(1, 1200) g", aid, acct)
    d = env.start()
    # the admin API's own database connection can lag /readyz by a few ms (test_admin_api)
    wait_for(lambda: api(d, "GET", "/v1/numbers?limit=1").status != 503, 10.0 * SLOW,
             what="the admin API's database connection")
    e = ctl_env(d, TOKEN_A)
    args = [str(ctl_bin()), "numbers", "list", "--all", "--limit", "200"]
    # piped: no progress line, only the table
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                       timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", repr(r.stderr)
    assert "\r" not in r.stdout and "numbers list:" not in r.stdout
    rows = len(r.stdout.splitlines())
    assert rows > 1200, rows
    # on a terminal: the line is drawn ("\r" + text + erase), then erased
    rc, out, drawn = run_on_pty(args, e, 60 * SLOW)
    assert rc == 0, drawn
    assert re.search(r"\rnumbers list: \d+ numbers, \d+ numbers/s, [0-9.]+ s\x1b\[K", drawn), \
        repr(drawn)
    assert drawn.endswith("\r\x1b[K"), repr(drawn[-80:])
    assert len(out.splitlines()) == rows and "\r" not in out
    # on a terminal with --json: nothing drawn
    rc, out, drawn = run_on_pty(args + ["--json"], e, 60 * SLOW)
    assert rc == 0, drawn
    assert drawn == "", repr(drawn)
    assert out.lstrip().startswith("{")


def test_callroutectl_usage_shows_the_wait_on_a_terminal_only(env):
    """usage while PostgreSQL cannot answer yet (its table locked by another session for 1.5 s):
    "usage: 1.2 s" drawn on a terminal, nothing when stderr is a pipe or with --json."""
    args = [str(ctl_bin()), "--database", env.database_url, "usage", "--agency",
            str(env.ids.agency_a)]
    e = dict(daemon_env())
    e.update(FAST)

    def locked(run):
        c = env.pg.connect(env.dbname)
        try:
            c.autocommit = False
            c.execute("LOCK TABLE usage_ledger IN ACCESS EXCLUSIVE MODE")
            t = threading.Timer(1.5, c.rollback)
            t.start()
            try:
                return run()
            finally:
                t.join()
        finally:
            c.close()

    rc, out, drawn = locked(lambda: run_on_pty(args, e, 60 * SLOW))
    assert rc == 0, drawn
    assert re.search(r"\rusage: [0-9.]+ s\x1b\[K", drawn), repr(drawn)
    assert drawn.endswith("\r\x1b[K"), repr(drawn[-80:])
    assert out.splitlines()[0].split()[:2] == ["agency", "name"], out
    r = locked(lambda: subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=e, timeout=60 * SLOW))
    assert r.returncode == 0 and r.stderr == "", repr(r.stderr)
    assert "\r" not in r.stdout and r.stdout.split()[:2] == ["agency", "name"], r.stdout
    rc, out, drawn = locked(lambda: run_on_pty(args + ["--json"], e, 60 * SLOW))
    assert rc == 0 and drawn == "", repr(drawn)
    assert out.lstrip().startswith("{"), out
