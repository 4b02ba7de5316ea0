# test_statelock: one state directory, one daemon (the flock on state_dir/lock).
"""Issue 10, point 2 (the state directory): a second daemon on a state directory in use exits 1
with a message naming the directory and the holder's pid, and touches neither the journal nor
the snapshot; the first keeps serving; once the first has stopped (or was killed), a new one
starts on that directory."""

import os
import signal
import stat
import subprocess

from support.build import SLOW, callrouted_bin, daemon_env
from support.data import NUM_RET1
from support.ledger import ledger_ids, new_id, post_retell, retell_event, wait_drained
from support.signing import retell_inbound


def ok_event(d):
    cid = new_id("lock")
    r = post_retell(d, retell_event("call_ended", cid, "inbound", NUM_RET1))
    assert r.status == 200, r
    return cid


def run_second(env, first, name):
    """A second daemon on first's state_dir, run to completion: (exit code, output)."""
    d2 = env.daemon({"state_dir": str(first.state_dir), "instance_name": name}, name=name)
    d2.write_config()
    r = subprocess.run([str(callrouted_bin()), "-c", str(d2.conf_path)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=daemon_env(), timeout=30 * SLOW)
    return d2, r.returncode, r.stdout


def test_second_daemon_on_the_same_state_dir_exits_1(env):
    d1 = env.start({"instance_name": "lock-1"}, name="lock1")
    lock = d1.state_dir / "lock"
    st = lock.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert lock.read_text() == "%d\n" % d1.proc.pid
    before = ok_event(d1)
    wait_drained(d1)  # the first one's checkpoint is written: the listing stays as it is
    journal = sorted(p.name for p in (d1.state_dir / "journal").iterdir())

    d2, rc, out = run_second(env, d1, "lock2")
    assert rc == 1, "second daemon exited %r:\n%s" % (rc, out)
    assert 'state directory "%s" is in use' % d1.state_dir in out, out
    assert "pid %d" % d1.proc.pid in out, out
    assert "journal:" not in out and "snapshot:" not in out, \
        "the second daemon touched the journal or the snapshot:\n" + out
    assert sorted(p.name for p in (d1.state_dir / "journal").iterdir()) == journal
    assert lock.read_text() == "%d\n" % d1.proc.pid

    # the first keeps serving: routing and call events
    r = retell_inbound(d1, NUM_RET1)
    assert r.status == 200, r
    after = ok_event(d1)
    wait_drained(d1)
    got = ledger_ids(env.conn)
    assert got.get(before) == 1 and got.get(after) == 1, got

    # once the first has stopped, a new daemon starts on the directory
    assert d1.stop() == 0, d1.log_tail()
    d3 = env.start({"state_dir": str(d1.state_dir), "instance_name": "lock-3"}, name="lock3")
    assert lock.read_text() == "%d\n" % d3.proc.pid
    ok_event(d3)


def test_lock_dies_with_a_killed_daemon(env):
    """SIGKILL leaves the file (with the dead pid) but not the lock: the next one starts."""
    d1 = env.start({"instance_name": "kill-1"}, name="kill1")
    cid = ok_event(d1)
    d1.proc.send_signal(signal.SIGKILL)
    d1.proc.wait()
    assert (d1.state_dir / "lock").exists()
    d2 = env.start({"state_dir": str(d1.state_dir), "instance_name": "kill-2"}, name="kill2")
    assert (d1.state_dir / "lock").read_text() == "%d\n" % d2.proc.pid
    wait_drained(d2)
    assert ledger_ids(env.conn).get(cid) == 1


def test_check_config_and_migrate_do_not_take_the_lock(env):
    """--check-config runs beside a daemon on the same state_dir (ExecStartPre, ExecReload)."""
    d1 = env.start({"instance_name": "cc-1"}, name="cc1")
    r = subprocess.run([str(callrouted_bin()), "-c", str(d1.conf_path), "--check-config"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=daemon_env(), timeout=30 * SLOW)
    assert r.returncode == 0, r.stdout
    assert (d1.state_dir / "lock").read_text() == "%d\n" % d1.proc.pid
    assert os.path.exists(d1.state_dir / "lock")
