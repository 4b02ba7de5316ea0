# test_admin_strict: strict input of the admin API (bodies, query strings) and of callroutectl's options.
"""Acceptance (issue 12, item 2): in any admin API body an unknown field, a wrong type for a
field, a duplicate key, a body that is not a JSON object or an empty body is 400 `invalid`
naming the field (or saying what the body must be), and the provider receives nothing and the
database is unchanged; a query parameter a route does not take, and a body where a route takes
none, likewise.  callroutectl: an unknown, repeated or abbreviated option, or a value of the wrong
form, exits 2 naming the option, before any request."""

import json

import pytest

from support.admin_api import api, assert_error, numbers_snapshot
from support.api_sandbox import ApiSandbox, start_api
from support.ctl import ctl

TO = "+14155550188"


@pytest.fixture
def fake(tmp_path):
    """The provider sandbox (support.api_sandbox): it must receive nothing here."""
    f = ApiSandbox(tmp_path / "sandbox")
    yield f
    f.stop()


@pytest.fixture
def d(env, fake):
    return start_api(env, fake)


def endpoints(env):
    """(method, path, a valid body) of every route that takes a body."""
    i = env.ids
    return [
        ("POST", "/v1/numbers", {"account": "ret-a", "area_code": "415", "nickname": "Desk",
                                 "agent_id": i.agent_ret1}),
        ("PATCH", "/v1/numbers/%d" % i.num_ret1, {"nickname": "Desk", "agent_id": i.agent_ret2}),
        ("POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": TO, "from": None}),
    ]


# Per field: values of a type it does not take.
WRONG_TYPES = {
    "account": [5, None, True, [], {}, 1.5],
    "area_code": [None, True, False, 415.0, [415], {"code": 415}],
    "nickname": [5, True, [], {}, 1.5],
    "agent_id": [True, 1.5, [1], {"id": 1}],
    "to": [None, 14155550188, True, [TO], {}],
    "from": [14155550188, True, [TO], {}],
}

NOT_OBJECTS = [b"[]", b"[{}]", b'"account"', b"5", b"null", b"true", b"1.5"]


def refused(d, method, path, body=None, raw=None, contains=None):
    r = api(d, method, path, body, raw=raw)
    e = assert_error(r, 400, "invalid", contains)
    return e["message"]


def test_unknown_fields_are_refused_naming_them(env, fake, d):
    before = numbers_snapshot(env)
    for method, path, good in endpoints(env):
        for extra in ("agentId", "caller_id", "Nickname", "agent_id ", "", "x" * 100):
            if extra in good:
                continue
            body = dict(good)
            body[extra] = 1
            m = refused(d, method, path, body, contains='unknown field "%s"' % extra)
            assert m == 'unknown field "%s"' % extra, m
    # the two: a misspelt agentId buys nothing, an unknown caller_id places no call
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415",
                                       "agentId": env.ids.agent_ret1})
    assert r.status == 400 and json.loads(r.body) == \
        {"error": {"code": "invalid", "message": 'unknown field "agentId"'}}, r
    refused(d, "POST", "/v1/calls", {"agent_id": env.ids.agent_ret1, "to": TO,
                                     "caller_id": "+14155550100"}, contains='"caller_id"')
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


def test_wrong_types_are_refused_naming_the_field(env, fake, d):
    before = numbers_snapshot(env)
    n = 0
    for method, path, good in endpoints(env):
        for field in good:
            for bad in WRONG_TYPES[field]:
                body = dict(good)
                body[field] = bad
                m = refused(d, method, path, body)
                assert m.startswith(field + ":"), (method, path, field, bad, m)
                n += 1
    assert n > 40
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


def test_duplicate_keys_are_refused_naming_the_key(env, fake, d):
    i = env.ids
    before = numbers_snapshot(env)
    cases = [
        ("POST", "/v1/numbers", b'{"account": "ret-a", "area_code": "415", '
                                b'"account": "ret-b"}', "account"),
        ("POST", "/v1/numbers", b'{"account": "ret-a", "area_code": "415", "agent_id": %d, '
                                b'"agent_id": null}' % i.agent_ret1, "agent_id"),
        ("PATCH", "/v1/numbers/%d" % i.num_ret1, b'{"nickname": "A", "nickname": "A"}',
         "nickname"),
        ("PATCH", "/v1/numbers/%d" % i.num_ret1, b'{"agent_id": %d, "agent_id": %d}'
         % (i.agent_ret2, i.agent_ret2), "agent_id"),
        ("POST", "/v1/calls", b'{"agent_id": %d, "to": "%s", "to": "+14155550199"}'
         % (i.agent_ret1, TO.encode()), "to"),
        ("POST", "/v1/calls", b'{"agent_id": %d, "to": "%s", "from": null, "from": null}'
         % (i.agent_ret1, TO.encode()), "from"),
    ]
    for method, path, raw, key in cases:
        m = refused(d, method, path, raw=raw)
        assert m == 'duplicate field "%s"' % key, (raw, m)
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


def test_bodies_that_are_not_objects_or_empty(env, fake, d):
    before = numbers_snapshot(env)
    for method, path, _ in endpoints(env):
        for raw in NOT_OBJECTS:
            m = refused(d, method, path, raw=raw, contains="must be a JSON object")
            assert "not " in m, m
        assert "empty" in refused(d, method, path, raw=b"")
        for raw in (b"{", b'{"account": "ret-a",}', b'{"a": 1} {}', b"{'a': 1}",
                    b'{"nickname": "a\\u0000b"}', b'{"agent_id": 99999999999999999999999}'):
            assert "not JSON" in refused(d, method, path, raw=raw), raw
        # a JSON object, but nothing to do with it
        refused(d, method, path, body={})
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


def test_query_and_body_where_a_route_takes_none(env, fake, d):
    i = env.ids
    before = numbers_snapshot(env)
    num = "/v1/numbers/%d" % i.num_ret1
    # query parameters: only GET /v1/numbers takes them
    for method, path, good in endpoints(env):
        refused(d, method, path + "?dry_run=1", body=good, contains='"dry_run"')
    refused(d, "GET", num + "?verbose=1", contains='"verbose"')
    refused(d, "DELETE", num + "?forced=true", contains='"forced"')   # it takes force only
    refused(d, "DELETE", num + "?force=1", contains='"force"')
    # the list: an unknown key, a repeated one, a bad value, each named
    refused(d, "GET", "/v1/numbers?Limit=5", contains='"Limit"')
    refused(d, "GET", "/v1/numbers?limit=5&limit=6", contains="\"limit\" given twice")
    refused(d, "GET", "/v1/numbers?limit=5&%6cimit=6", contains="each key once")
    refused(d, "GET", "/v1/numbers?limit=0", contains='"limit"')
    refused(d, "GET", "/v1/numbers?status=all", contains='"status"')
    # a body where none is taken
    refused(d, "DELETE", num, body={"force": True}, contains="takes no body")
    refused(d, "GET", num, body={}, contains="takes no body")
    refused(d, "GET", "/v1/numbers", raw=b"limit=5", contains="takes no body")
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before
    # still fine: the list with every parameter once
    r = api(d, "GET", "/v1/numbers?status=active&limit=2&provider=retell")
    assert r.status == 200, r


# ---- callroutectl ----

CTL_REFUSED = [
    # (args, what the message must name)
    (["numbers", "list", "--colour"], "--colour"),
    (["numbers", "buy", "--account", "ret-a", "--area-code", "415", "--agent-id", "1"],
     "--agent-id"),
    (["calls", "place", "--agent", "1", "--to", TO, "--caller-id", "+14155550100"],
     "--caller-id"),
    (["numbers", "list", "-x"], "-x"),
    # repeated
    (["numbers", "list", "--limit", "5", "--limit", "6"], "--limit"),
    (["numbers", "buy", "--account", "ret-a", "--account", "ret-b", "--area-code", "415"],
     "--account"),
    (["numbers", "assign", "3", "--agent", "1", "--agent=2"], "--agent"),
    (["calls", "place", "--agent", "1", "--to", TO, "--to", TO], "--to"),
    (["numbers", "list", "--all", "--all"], "--all"),
    (["numbers", "list", "--json", "--json"], "--json"),
    (["numbers", "list", "--url", "http://127.0.0.1:9"], "--url"),     # also given before
    (["usage", "--agency", "1", "--by", "day", "--by", "agent"], "--by"),
    (["tokens", "create", "--agency", "1", "--quiet", "--quiet"], "--quiet"),
    # abbreviated: getopt_long would take --acc for --account
    (["numbers", "buy", "--acc", "ret-a", "--area-code", "415"], "--acc"),
    (["numbers", "list", "--lim", "5"], "--lim"),
    # a value where none is taken
    (["numbers", "list", "--all=yes"], "--all"),
    (["numbers", "list", "--json=1"], "--json"),
    # values of the wrong form
    (["numbers", "list", "--limit", "5x"], "--limit"),
    (["numbers", "assign", "3", "--agent", "-1"], "--agent"),
    (["usage", "--agency", "1", "--to", "yesterday"], "--to"),
    (["numbers", "list", "--provider", ""], "--provider"),
    (["numbers", "buy", "--account", "", "--area-code", "415"], "--account"),
    (["numbers", "buy", "--account", "ret-a", "--area-code", "415", "--nickname", ""],
     "--nickname"),
    (["tokens", "create", "--agency", "1", "--name", ""], "--name"),
    (["numbers", "list", "--token", "a b"], "--token"),
]

CTL_GLOBAL_REFUSED = [
    (["--url", "http://127.0.0.1:9", "--url", "http://127.0.0.1:9", "--token", "t",
      "numbers", "list"], "--url"),
    (["--token", "t", "--token", "t", "--url", "http://127.0.0.1:9", "numbers", "list"],
     "--token"),
    (["--json", "--json", "--token", "t", "--url", "http://127.0.0.1:9", "numbers", "list"],
     "--json"),
    (["-c", "/nonexistent", "--config", "/nonexistent", "numbers", "list"], "--config"),
    (["--database", "x", "--database=y", "usage", "--agency", "1"], "--database"),
    (["--url", "ftp://x", "--token", "t", "numbers", "list"], "--url"),
    (["--token", "a b", "--url", "http://127.0.0.1:9", "numbers", "list"], "--token"),
    (["--bogus", "numbers", "list"], "--bogus"),
]


@pytest.mark.parametrize("args,name", CTL_REFUSED, ids=lambda a: " ".join(a)
                         if isinstance(a, list) else a)
def test_callroutectl_refuses_options(args, name):
    # a token and an unused port: a usage error must stop before any request
    r = ctl("--url", "http://127.0.0.1:9", "--token", "t", *args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert name in r.stderr, r.stderr
    assert r.stdout == "", r.stdout


@pytest.mark.parametrize("args,name", CTL_GLOBAL_REFUSED, ids=lambda a: " ".join(a)
                         if isinstance(a, list) else a)
def test_callroutectl_refuses_global_options(args, name):
    r = ctl(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert name in r.stderr, r.stderr
    assert r.stdout == "", r.stdout
