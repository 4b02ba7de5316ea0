# test_admin: /healthz, /readyz, and a clean exit on SIGTERM and SIGINT.
"""Acceptance: the admin listener's health and readiness answers."""

import signal

from support.build import SLOW
from support.data import NUM_RET1
from support.polling import wait_for
from support.signing import retell_inbound


def test_healthz(env, daemon):
    r = daemon.admin("GET", "/healthz")
    assert r.status == 200, r
    assert r.json() == {"status": "ok"}


def test_readyz_fields(env, daemon):
    r = daemon.readyz()
    assert r.status == 200, r
    j = r.json()
    assert j["ready"] is True, j
    assert j["source"] == "database", j
    assert j["database"] == "up", j
    assert isinstance(j["generation"], int) and j["generation"] >= 1, j
    assert j["numbers"] == env.ids.n_numbers, j


def test_readyz_generation_moves_on_change(env, daemon):
    g0 = daemon.readyz().json()["generation"]
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s",
            env.ids.agent_ret2, env.ids.num_ret1)
    wait_for(lambda: retell_inbound(daemon, NUM_RET1).json()["call_inbound"]
             .get("override_agent_id") == "agent_ret_2", 5.0, what="the change")
    j = daemon.readyz().json()
    assert j["generation"] > g0, (g0, j)
    assert j["numbers"] == env.ids.n_numbers, j


def test_readyz_counts_new_numbers(env, daemon):
    i = env.ids
    env.sql("INSERT INTO phone_numbers (agency_id, account_id, provider, e164) "
            "VALUES (%s, %s, 'retell', '+14155550170')", i.agency_a, i.acct_retell)
    wait_for(lambda: daemon.readyz().json()["numbers"] == i.n_numbers + 1, 5.0,
             what="/readyz numbers to count the new number")


def test_sigint_exits_cleanly(env, daemon):
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.proc.wait(10 * SLOW) == 0, daemon.log_tail()
