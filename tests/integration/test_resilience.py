# test_resilience: routing through a lost database connection, and from the snapshot file without one.
"""Acceptance: the daemon survives its database backend being killed (reconnect, LISTEN, full
reload), and a daemon started while PostgreSQL is unreachable routes from the snapshot written
by an earlier run."""

import time

from support.data import NUM_RET1, NUM_RET2, NUM_RET_FREE, NUM_VAPI1
from support.net import free_port
from support.polling import wait_for
from support.scrape import scrape
from support.signing import retell_inbound, vapi_assistant_request

KILL_BACKENDS = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def agent_of(d, number):
    r = retell_inbound(d, number)
    assert r.status == 200, r
    return r.json()["call_inbound"].get("override_agent_id")


def backends(env):
    return env.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND pid <> pg_backend_pid()").fetchone()[0]


def test_backend_killed_is_survived(env, daemon):
    i = env.ids
    d = daemon
    assert agent_of(d, NUM_RET1) == "agent_ret_1"
    assert backends(env) >= 1, "the daemon holds no connection to its database"
    killed = env.sql(KILL_BACKENDS).fetchall()
    assert len(killed) >= 1 and all(k[0] for k in killed)

    # routing keeps answering during the outage and the reconnect
    t_end = time.monotonic() + 0.6
    n = 0
    while time.monotonic() < t_end:
        assert agent_of(d, NUM_RET1) == "agent_ret_1"
        n += 1
        time.sleep(0.02)
    assert n > 5

    # the daemon reconnects (reconnect_interval 200ms) and LISTENs again: a later change is seen
    wait_for(lambda: backends(env) >= 1, 5.0, what="the daemon to reconnect")
    t0 = time.monotonic()
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_ret2, i.num_ret1)
    _, took = wait_for(lambda: agent_of(d, NUM_RET1) == "agent_ret_2", 5.0,
                       what="a change made after the reconnect")
    print("change after reconnect seen in %.0f ms (%.0f ms since the UPDATE)"
          % (took * 1000, (time.monotonic() - t0) * 1000))
    r = d.readyz()
    assert r.status == 200 and r.json()["database"] == "up", r
    # the FATAL each backend sent before it closed reached the log as our line, not libpq's raw
    # "FATAL:  terminating connection..." on stderr
    log = d.log()
    assert not [ln for ln in log.splitlines() if ln.startswith("FATAL:")], log[-3000:]
    assert "the server says FATAL: terminating connection due to administrator command " \
           "(SQLSTATE 57P01)" in log, log[-3000:]
    assert scrape(d).get("callrouted_db_server_notices_total") >= 1


def test_change_made_while_disconnected_is_seen_after_reconnect(env, daemon):
    """A change made while the daemon was away (NOTIFY lost) arrives by the full reload."""
    i = env.ids
    d = daemon
    env.sql(KILL_BACKENDS)
    # no listener now: this notification is lost, only the reload on reconnect can bring it
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_ret1, i.num_ret_free)
    wait_for(lambda: agent_of(d, NUM_RET_FREE) == "agent_ret_1", 5.0,
             what="a change made during the outage")
    assert agent_of(d, NUM_RET1) == "agent_ret_1"


def wait_snapshot(d):
    snap = d.state_dir / "routes.snapshot"
    wait_for(lambda: snap.exists() and snap.stat().st_size > 0, 10.0,
             what="%s to be written" % snap)
    return snap


def start_offline(env, a):
    """Daemon B: A's state_dir, database_url pointing at a closed port."""
    closed = env.pg.url(env.dbname, port=free_port())
    b = env.daemon({"state_dir": str(a.state_dir)}, database_url=closed, name="b")
    return b.start()


def test_routes_from_snapshot_when_database_unreachable(env):
    i = env.ids
    a = env.start(name="a")
    snap = wait_snapshot(a)
    assert a.stop() == 0, a.log_tail()
    assert snap.exists()

    b = start_offline(env, a)
    r = b.readyz()
    assert r.status == 200, r
    j = r.json()
    assert j["ready"] is True and j["source"] == "snapshot" and j["database"] == "down", j
    assert j["numbers"] == i.n_numbers, j
    assert agent_of(b, NUM_RET1) == "agent_ret_1"
    assert agent_of(b, NUM_RET2) == "agent_ret_2"
    assert agent_of(b, NUM_RET_FREE) is None
    r = vapi_assistant_request(b, NUM_VAPI1)
    assert r.status == 200 and r.json()["assistantId"] == "asst_vapi_1", r
    r = retell_inbound(b, NUM_RET1)
    assert r.json()["call_inbound"]["dynamic_variables"] == {"agent_name": "Reception",
                                                             "client_name": "Acme Dental"}


def test_snapshot_holds_the_last_change_at_clean_exit(env):
    """A change routed just before a clean stop is in the snapshot the next start reads."""
    i = env.ids
    a = env.start(name="a")
    wait_snapshot(a)
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_ret2, i.num_ret_free)
    wait_for(lambda: agent_of(a, NUM_RET_FREE) == "agent_ret_2", 5.0, what="the change in A")
    assert a.stop() == 0, a.log_tail()

    b = start_offline(env, a)
    assert b.readyz().json()["source"] == "snapshot"
    assert agent_of(b, NUM_RET_FREE) == "agent_ret_2", \
        "the snapshot file lacks the last change A routed before its clean exit"


def test_not_ready_without_database_or_snapshot(env):
    closed = env.pg.url(env.dbname, port=free_port())
    d = env.daemon(database_url=closed).start(wait_ready=False)
    d.wait_alive()
    r = d.readyz()
    assert r.status == 503, r
    assert r.json()["ready"] is False, r
    # it keeps running (and retrying), and stops cleanly
    time.sleep(0.5)
    assert d.running(), d.log_tail()
