# test_admin_tokens: the admin API's read path at scale (issue 16): pooled connections, the
# number page written without jansson, and the optional cache of checked tokens.
"""GET /v1/numbers pages (written from the query's result by daemon/api_numbers.c) are the
numbers GET /v1/numbers/{id} and the filtered lists (built with jansson) answer, field by field
and in the same key order, on a data set with agents, clients, nicknames (with characters to
escape), released and unbound numbers and provider notes; with admin_db_connections = 1 and
4.  With admin_token_cache on, a kept token answers without its query, keeps its scope (a
portal token stays read-only and client-scoped), and a revocation or deletion is refused once
PostgreSQL's notification arrives (migration 011's trigger); with it off (the default) a
revocation applies to the next request (test_callroutectl checks that)."""

import json
import time

from support.admin_api import TOKEN_A, TOKEN_PORTAL, api, insert_tokens, sha
from support.polling import wait_for


def ordered(r):
    return json.loads(r.body, object_pairs_hook=list)


def page_all(d, query=""):
    """Every number of agency A through the pages (limit 2: several pages)."""
    out, after = [], 0
    while True:
        r = api(d, "GET", "/v1/numbers?limit=2%s%s"
                % ("&after=%d" % after if after else "", query))
        assert r.status == 200, r
        j = r.json()
        out += ordered(r)[0][1]
        if j["next_after"] is None:
            return out
        after = j["next_after"]


def test_pages_are_the_numbers_jansson_writes(env):
    insert_tokens(env)
    # characters JSON escapes, a non-ASCII one, a provider note, an unbound release
    env.sql("UPDATE phone_numbers SET nickname = %s WHERE id = (SELECT min(id) FROM "
            "phone_numbers WHERE agency_id = %s AND status = 'active')",
            'front "desk" \\ line\t1 \u00e9\u20ac /', env.ids.agency_a)
    env.sql("UPDATE phone_numbers SET provider_note = 'noted by the sync' WHERE id = (SELECT "
            "max(id) FROM phone_numbers WHERE agency_id = %s)", env.ids.agency_a)
    env.sql("UPDATE phone_numbers SET status = 'released', released_at = "
            "'2026-03-04 05:06:07.89+00', agent_id = NULL, provider_released = false, "
            "created_at = '2026-01-02 03:04:05+00' WHERE id = (SELECT min(id) FROM phone_numbers "
            "WHERE agency_id = %s AND agent_id IS NOT NULL AND status = 'active')",
            env.ids.agency_a)
    for conns in ("1", "4"):
        d = env.start({"admin_db_connections": conns}, name="c%s" % conns)
        wait_for(lambda: d.log().count("db: admin connected") == int(conns) or None,
                 10.0 * d.slow, 0.02, "the admin API's connections")
        fast = page_all(d)
        assert len(fast) >= 3, fast
        # the same numbers through the jansson path: one provider at a time, merged by id
        slow = []
        for p in ("retell", "vapi", "bland"):
            slow += page_all(d, "&provider=" + p)
        slow.sort(key=lambda n: dict(n)["id"])
        assert fast == slow
        for n in fast:
            r = api(d, "GET", "/v1/numbers/%d" % dict(n)["id"])
            assert ordered(r) == n
        notes = [dict(n).get("provider_note") for n in fast]
        assert "noted by the sync" in notes
        assert any(x and "unbound" in x for x in notes), notes
        rel = [dict(n) for n in fast if dict(n)["status"] == "released"]
        assert rel and rel[0]["released_at"] == "2026-03-04T05:06:07.890Z", rel
        assert rel[0]["created_at"] == "2026-01-02T03:04:05.000Z", rel
        # a prefix search, both ways (prepared statement; with a filter: the generic query)
        e164 = dict(fast[0])["e164"]
        for k in (6, 8, len(e164)):  # broad (planned for it), narrow (a fixed plan), whole
            pre = page_all(d, "&e164=%2B" + e164[1:k])
            assert pre and pre == [n for n in fast if dict(n)["e164"].startswith(e164[:k])], k
        d.stop()


def test_token_cache_keeps_scope_and_forgets_on_revocation(env):
    insert_tokens(env)
    d = env.start({"admin_token_cache": "30s"})
    wait_for(lambda: "db: admin tokens connected" in d.log()
             and "db: admin connected" in d.log() or None, 10.0 * d.slow, 0.02,
             "the listening connection")
    for _ in range(3):  # the first from the database, the others kept
        assert api(d, "GET", "/v1/numbers").status == 200
        r = api(d, "GET", "/v1/accounts", token=TOKEN_PORTAL)
        assert r.status == 403, r  # a portal token: still agency configuration
        r = api(d, "PATCH", "/v1/numbers/1", body={"nickname": "x"}, token=TOKEN_PORTAL)
        assert r.status == 403, r  # still read-only
    mine = api(d, "GET", "/v1/numbers", token=TOKEN_PORTAL).json()["numbers"]
    assert all(n["client"] and n["client"]["id"] == env.ids.client_acme for n in mine), mine

    t0 = time.monotonic()
    env.sql("UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = %s", sha(TOKEN_A))
    wait_for(lambda: api(d, "GET", "/v1/numbers").status == 401 or None, 5.0 * d.slow, 0.01,
             "the revoked token refused")
    assert time.monotonic() - t0 < 5.0 * d.slow  # long before the cache's 30 s
    assert api(d, "GET", "/v1/route?to=%2B14155550101").status == 401
    # a deletion too (the portal token, kept until now)
    assert api(d, "GET", "/v1/numbers", token=TOKEN_PORTAL).status == 200
    env.sql("DELETE FROM api_tokens WHERE token_sha256 = %s", sha(TOKEN_PORTAL))
    wait_for(lambda: api(d, "GET", "/v1/numbers", token=TOKEN_PORTAL).status == 401 or None,
             5.0 * d.slow, 0.01, "the deleted token refused")
