# test_schema: business rules enforced by the database, migrations and the daemon's schema guard.
"""Acceptance: the schema refuses provider mismatches, double-active numbers and released numbers
with an agent; the daemon refuses to run on an unmigrated or newer schema; --migrate is
idempotent."""

import psycopg
import pytest
from psycopg import errors

from support.build import SLOW, run_cli
from support.data import NUM_RET1
from support.polling import wait_for


# ---- 4. constraints ----

def test_vapi_number_cannot_take_a_retell_agent(env):
    i = env.ids
    with pytest.raises(psycopg.IntegrityError) as e:
        env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_ret1, i.num_vapi1)
    assert isinstance(e.value, errors.ForeignKeyViolation), repr(e.value)


def test_number_cannot_take_another_agencys_agent(env):
    i = env.ids
    with pytest.raises(errors.ForeignKeyViolation):
        env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_b1, i.num_ret1)


def test_two_active_rows_for_one_number(env):
    i = env.ids
    with pytest.raises(psycopg.IntegrityError) as e:
        env.sql("INSERT INTO phone_numbers (agency_id, account_id, provider, e164) "
                "VALUES (%s, %s, 'retell', %s)", i.agency_a, i.acct_retell, NUM_RET1)
    assert isinstance(e.value, errors.UniqueViolation), repr(e.value)


def test_released_number_cannot_keep_an_agent(env):
    i = env.ids
    with pytest.raises(psycopg.IntegrityError) as e:
        env.sql("UPDATE phone_numbers SET status = 'released', released_at = now() "
                "WHERE id = %s", i.num_ret1)
    assert isinstance(e.value, errors.CheckViolation), repr(e.value)
    # released properly, it is fine, and the number can be bought again
    env.sql("UPDATE phone_numbers SET status = 'released', agent_id = NULL, released_at = now() "
            "WHERE id = %s", i.num_ret1)
    env.sql("INSERT INTO phone_numbers (agency_id, account_id, provider, e164) "
            "VALUES (%s, %s, 'retell', %s)", i.agency_a, i.acct_retell, NUM_RET1)


# ---- 8. schema guard and migrations ----

def wait_exit(d, timeout=15.0):
    wait_for(lambda: not d.running(), timeout * SLOW, 0.05, "the daemon to exit")
    return d.proc.returncode


def test_unmigrated_database_is_refused(bare_env):
    d = bare_env.start(wait_ready=False)
    assert wait_exit(d) == 1, d.log_tail()
    assert "migrat" in d.log().lower(), d.log_tail()


def test_older_schema_is_refused(bare_env):
    """The migrations table exists but records nothing applied: older than the binary."""
    e = bare_env
    e.migrate()
    e.sql("DELETE FROM callrouted_schema_migrations")
    d = e.start(wait_ready=False)
    assert wait_exit(d) == 1, d.log_tail()
    assert "migrat" in d.log().lower(), d.log_tail()


def test_schema_with_a_missing_migration_is_refused(bare_env):
    """A migration numbered below the newest applied one is missing (a branch merged late):
    the schema is at the version below the gap, older than the binary, and --migrate is asked
    for (migrate applies every version not recorded, not only those above the newest)."""
    e = bare_env
    e.migrate()
    e.sql("DELETE FROM callrouted_schema_migrations WHERE version = 2")
    d = e.start(wait_ready=False)
    assert wait_exit(d) == 1, d.log_tail()
    assert "schema is at version 1, older than this binary" in d.log(), d.log_tail()
    assert "run callrouted --migrate" in d.log(), d.log_tail()


def test_newer_schema_is_refused(bare_env):
    e = bare_env
    e.migrate()
    e.sql("INSERT INTO callrouted_schema_migrations (version, name, applied_at) "
          "VALUES (9999, '9999_from_the_future', now())")
    d = e.start(wait_ready=False)
    assert wait_exit(d) == 1, d.log_tail()
    log = d.log().lower()
    assert any(w in log for w in ("9999", "newer", "schema")), d.log_tail()


def test_migrate_is_idempotent(bare_env):
    e = bare_env
    e.migrate()
    before = e.sql("SELECT version, name FROM callrouted_schema_migrations "
                   "ORDER BY version").fetchall()
    assert before and before[0][0] == 1, before
    e.migrate()
    after = e.sql("SELECT version, name FROM callrouted_schema_migrations "
                  "ORDER BY version").fetchall()
    assert after == before
    # and the migrated schema is what the daemon runs on
    e.start()


def test_migrate_refuses_unreachable_database(bare_env, tmp_path):
    from support.net import free_port
    conf = bare_env.write_conf("m", {"database_url": bare_env.pg.url(bare_env.dbname,
                                                                     port=free_port()),
                                     "state_dir": str(tmp_path)})
    r = run_cli("-c", conf, "--migrate")
    assert r.returncode != 0, (r.stdout, r.stderr)
