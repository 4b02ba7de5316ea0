# test_routing: inbound routing of each provider, live changes by plain SQL, "no agent" answers.
"""Acceptance: a call to a number reaches the number's assigned agent, changes made by plain SQL
are seen within a second without a restart, and every kind of "no agent" gets the provider's
"no agent" answer (never another agency's agent)."""

import json
import time

import pytest

from support.data import (BLAND_SLUG, DEFAULT_VAPI_NO_AGENT, NUM_B1, NUM_BLAND1, NUM_RET1,
                          NUM_RET2, NUM_RET_FREE, NUM_UNKNOWN, NUM_VAPI1, NUM_VAPI_BEARER,
                          RETELL_B_KEY, RETELL_B_SLUG, RETELL_KEY, RETELL_SLUG, VAPI_BEARER_SECRET,
                          VAPI_BEARER_SLUG, VAPI_SECRET, VAPI_SLUG, meta, variables)
from support.polling import wait_for
from support.signing import bland_dynamic, retell_inbound, sw, vapi_assistant_request

# The fixture files' exact text (pretty-printed, as providers may send it), to_number replaced.
RETELL_CALL_INBOUND_FIXTURE = """{
  "event": "call_inbound",
  "call_inbound": {
    "agent_id": "agent_default01",
    "agent_version": 3,
    "from_number": "+14155550123",
    "to_number": "+14155559876"
  }
}
"""

VAPI_ASSISTANT_REQUEST_FIXTURE = """{
  "message": {
    "type": "assistant-request",
    "timestamp": 1714608475945,
    "phoneNumber": {
      "id": "pn_9d1e",
      "number": "+14155559876",
      "provider": "vapi"
    },
    "customer": {
      "number": "+14155550123"
    },
    "call": {
      "id": "c_7f3a",
      "orgId": "org_1",
      "type": "inboundPhoneCall",
      "status": "ringing",
      "phoneNumberId": "pn_9d1e",
      "customer": {
        "number": "+14155550123"
      }
    }
  }
}
"""

LIVE = 1.0   # seconds within which plain-SQL changes must be routed
POLL = 0.02


def routed_meta(*a, **kw):
    """The metadata of a routed answer: the ids and the decision (issue 13)."""
    return dict(meta(*a, **kw), callrouted_decision="assigned", callrouted_overflow="false")


def retell_ok(i, agent_pid, agent_name, agent_id, number_id, client_name=None, client_id=None):
    return {"call_inbound": {
        "override_agent_id": agent_pid,
        "dynamic_variables": variables(agent_name, client_name),
        "metadata": routed_meta(i.agency_a, agent_id, number_id, client_id),
    }}


RETELL_NO_AGENT = {"call_inbound": {}}


def retell_answer(d, number, **kw):
    r = retell_inbound(d, number, **kw)
    assert r.status == 200, r
    return r.json()


def retell_agent(d, number):
    return retell_answer(d, number).get("call_inbound", {}).get("override_agent_id")


def until_changed(pred, what):
    """Poll pred every 20 ms; assert it holds within LIVE seconds; return the latency."""
    _, elapsed = wait_for(pred, 5.0, POLL, what)
    print("%s: seen after %.0f ms" % (what, elapsed * 1000))
    assert elapsed < LIVE, "%s took %.3f s (want < %.1f s)" % (what, elapsed, LIVE)
    return elapsed


# ---- 1. each provider routes to the assigned agent ----

def test_retell_call_inbound_routes_to_assigned_agent(env, daemon):
    i = env.ids
    r = retell_inbound(daemon, NUM_RET1)
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("application/json")
    assert r.json() == retell_ok(i, "agent_ret_1", "Reception", i.agent_ret1, i.num_ret1,
                                 "Acme Dental", i.client_acme)


def test_retell_agent_without_client(env, daemon):
    i = env.ids
    assert retell_answer(daemon, NUM_RET2) == retell_ok(i, "agent_ret_2", "After Hours",
                                                        i.agent_ret2, i.num_ret2)


def test_retell_fixture_bytes_as_sent(env, daemon):
    """The fixture's pretty-printed bytes, signed as they are: the HMAC covers the raw body."""
    i = env.ids
    body = RETELL_CALL_INBOUND_FIXTURE.replace("+14155559876", NUM_RET1).encode()
    r = daemon.post("retell", RETELL_SLUG, body, sw.retell_headers(RETELL_KEY, body))
    assert r.status == 200, r
    assert r.json() == retell_ok(i, "agent_ret_1", "Reception", i.agent_ret1, i.num_ret1,
                                 "Acme Dental", i.client_acme)


def test_retell_number_with_separators_is_normalised(env, daemon):
    """e164.h: visual separators between digits are accepted."""
    assert retell_agent(daemon, "+1 415-555-0101") == "agent_ret_1"


def vapi_ok(i, number_id, agent_id=None):
    return {
        "assistantId": "asst_vapi_1",
        "assistantOverrides": {
            "variableValues": variables("Vapi Front Desk", "Acme Dental"),
            "metadata": routed_meta(i.agency_a, agent_id or i.agent_vapi1, number_id,
                                    i.client_acme),
        },
    }


def test_vapi_assistant_request_hmac(env, daemon):
    i = env.ids
    r = vapi_assistant_request(daemon, NUM_VAPI1)
    assert r.status == 200, r
    assert r.json() == vapi_ok(i, i.num_vapi1)


def test_vapi_assistant_request_hmac_fixture_bytes_ms_timestamp(env, daemon):
    """Fixture bytes as sent; x-timestamp in milliseconds is accepted too."""
    i = env.ids
    body = VAPI_ASSISTANT_REQUEST_FIXTURE.replace("+14155559876", NUM_VAPI1).encode()
    h = sw.vapi_hmac_headers(VAPI_SECRET, body, ts=int(time.time() * 1000))
    r = daemon.post("vapi", VAPI_SLUG, body, h)
    assert r.status == 200, r
    assert r.json() == vapi_ok(i, i.num_vapi1)


@pytest.mark.parametrize("form", ["authorization", "x-vapi-secret"])
def test_vapi_assistant_request_bearer(env, daemon, form):
    i = env.ids
    r = vapi_assistant_request(daemon, NUM_VAPI_BEARER, slug=VAPI_BEARER_SLUG,
                               secret=VAPI_BEARER_SECRET, auth="bearer", bearer_form=form)
    assert r.status == 200, r
    assert r.json() == vapi_ok(i, i.num_vapi_bearer)


def test_bland_dynamic_data(env, daemon):
    i = env.ids
    r = bland_dynamic(daemon, NUM_BLAND1)
    assert r.status == 200, r
    assert r.json() == {
        "agent_id": "bland_agent_1",
        "agent_name": "Bland Intake",
        "client_name": "Acme Dental",
        "metadata": meta(i.agency_a, i.agent_bland1, i.num_bland1, i.client_acme),
    }


# ---- 2. plain-SQL changes are routed within a second ----

def test_reassignment_by_plain_sql_is_live(env, daemon):
    i = env.ids
    assert retell_agent(daemon, NUM_RET1) == "agent_ret_1"
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_ret2, i.num_ret1)
    until_changed(lambda: retell_agent(daemon, NUM_RET1) == "agent_ret_2",
                  "UPDATE phone_numbers SET agent_id")
    assert retell_answer(daemon, NUM_RET1) == retell_ok(i, "agent_ret_2", "After Hours",
                                                        i.agent_ret2, i.num_ret1)


def test_assigning_an_unassigned_number_is_live(env, daemon):
    i = env.ids
    assert retell_answer(daemon, NUM_RET_FREE) == RETELL_NO_AGENT
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_ret1, i.num_ret_free)
    until_changed(lambda: retell_agent(daemon, NUM_RET_FREE) == "agent_ret_1",
                  "assign an unassigned number")


def test_new_number_is_live(env, daemon):
    i = env.ids
    new = "+14155550150"
    assert retell_answer(daemon, new) == RETELL_NO_AGENT
    nid = env.sql("INSERT INTO phone_numbers (agency_id, account_id, provider, e164, agent_id) "
                  "VALUES (%s, %s, 'retell', %s, %s) RETURNING id",
                  i.agency_a, i.acct_retell, new, i.agent_ret2).fetchone()[0]
    until_changed(lambda: retell_agent(daemon, new) == "agent_ret_2", "INSERT phone_numbers")
    assert retell_answer(daemon, new) == retell_ok(i, "agent_ret_2", "After Hours",
                                                   i.agent_ret2, nid)


def test_agent_and_client_renames_are_live(env, daemon):
    i = env.ids

    def dyn():
        return retell_answer(daemon, NUM_RET1)["call_inbound"].get("dynamic_variables")
    env.sql("UPDATE agents SET name = 'Front Desk' WHERE id = %s", i.agent_ret1)
    until_changed(lambda: dyn() == variables("Front Desk", "Acme Dental"), "UPDATE agents name")
    env.sql("UPDATE clients SET name = 'Acme Dental Care' WHERE id = %s", i.client_acme)
    until_changed(lambda: dyn() == variables("Front Desk", "Acme Dental Care"),
                  "UPDATE clients name")


def test_agent_provider_id_change_is_live(env, daemon):
    i = env.ids
    env.sql("UPDATE agents SET provider_agent_id = 'agent_ret_1_v2' WHERE id = %s", i.agent_ret1)
    until_changed(lambda: retell_agent(daemon, NUM_RET1) == "agent_ret_1_v2",
                  "UPDATE agents provider_agent_id")


# ---- 3. "no agent" ----

RELEASE = ("UPDATE phone_numbers SET status = 'released', agent_id = NULL, released_at = now() "
           "WHERE id = %s")


def test_release_retell_number(env, daemon):
    i = env.ids
    assert retell_agent(daemon, NUM_RET1) == "agent_ret_1"
    env.sql(RELEASE, i.num_ret1)
    until_changed(lambda: retell_answer(daemon, NUM_RET1) == RETELL_NO_AGENT, "release (retell)")


def test_release_vapi_number(env):
    d = env.start({"vapi_no_agent_message": "Nobody home."})
    i = env.ids
    r = vapi_assistant_request(d, NUM_VAPI1)
    assert r.status == 200 and r.json()["assistantId"] == "asst_vapi_1", r
    env.sql(RELEASE, i.num_vapi1)

    def gone():
        r = vapi_assistant_request(d, NUM_VAPI1)
        assert r.status == 200, r
        return r.json() == {"error": "Nobody home."}
    until_changed(gone, "release (vapi)")


def test_release_bland_number(env, daemon):
    i = env.ids
    assert bland_dynamic(daemon, NUM_BLAND1).status == 200
    env.sql(RELEASE, i.num_bland1)

    def gone():
        r = bland_dynamic(daemon, NUM_BLAND1)
        return r.status == 404 and r.json() == {"error": "no agent"}
    until_changed(gone, "release (bland)")


def test_unassign_is_live(env, daemon):
    i = env.ids
    env.sql("UPDATE phone_numbers SET agent_id = NULL WHERE id = %s", i.num_ret1)
    until_changed(lambda: retell_answer(daemon, NUM_RET1) == RETELL_NO_AGENT, "unassign")


def test_released_number_bought_again(env, daemon):
    """A released row and a new active row for the same e164: the active one routes."""
    i = env.ids
    env.sql(RELEASE, i.num_ret1)
    until_changed(lambda: retell_answer(daemon, NUM_RET1) == RETELL_NO_AGENT, "release")
    nid = env.sql("INSERT INTO phone_numbers (agency_id, account_id, provider, e164, agent_id) "
                  "VALUES (%s, %s, 'retell', %s, %s) RETURNING id",
                  i.agency_a, i.acct_retell, NUM_RET1, i.agent_ret2).fetchone()[0]
    until_changed(lambda: retell_agent(daemon, NUM_RET1) == "agent_ret_2", "re-purchase")
    assert retell_answer(daemon, NUM_RET1)["call_inbound"]["metadata"]["callrouted_number_id"] \
        == str(nid)


def test_no_agent_answers(env, daemon):
    # unassigned, unknown
    assert retell_answer(daemon, NUM_RET_FREE) == RETELL_NO_AGENT
    assert retell_answer(daemon, NUM_UNKNOWN) == RETELL_NO_AGENT
    r = vapi_assistant_request(daemon, NUM_UNKNOWN)
    assert (r.status, r.json()) == (200, {"error": DEFAULT_VAPI_NO_AGENT}), r
    r = bland_dynamic(daemon, NUM_UNKNOWN)
    assert (r.status, r.json()) == (404, {"error": "no agent"}), r


def test_other_agencys_number_never_routes(env, daemon):
    # the number routes through its own account ...
    r = retell_answer(daemon, NUM_B1, slug=RETELL_B_SLUG, key=RETELL_B_KEY)
    assert r["call_inbound"]["override_agent_id"] == "agent_b_1"
    assert r["call_inbound"]["metadata"]["callrouted_agency_id"] == str(env.ids.agency_b)
    # ... and never through another agency's account of the same provider
    assert retell_answer(daemon, NUM_B1) == RETELL_NO_AGENT


def test_other_providers_number_never_routes(env, daemon):
    assert retell_answer(daemon, NUM_VAPI1) == RETELL_NO_AGENT
    assert retell_answer(daemon, NUM_BLAND1) == RETELL_NO_AGENT
    r = vapi_assistant_request(daemon, NUM_RET1)
    assert (r.status, r.json()) == (200, {"error": DEFAULT_VAPI_NO_AGENT}), r
    r = bland_dynamic(daemon, NUM_RET1)
    assert r.status == 404, r


def test_other_account_same_agency_same_provider(env, daemon):
    """The bearer Vapi account's number is not routed through the hmac Vapi account."""
    r = vapi_assistant_request(daemon, NUM_VAPI_BEARER)
    assert (r.status, r.json()) == (200, {"error": DEFAULT_VAPI_NO_AGENT}), r


def test_send_webhook_tool(env, daemon):
    """tools/send-webhook end to end: prints the status line and the body, exit 0 on 2xx."""
    import subprocess

    from support.build import REPO
    from support.data import BLAND_SECRET
    url = "http://127.0.0.1:%d" % daemon.port
    tool = str(REPO / "tools" / "send-webhook")
    cases = [
        (["--provider", "retell", "--account", RETELL_SLUG, "--secret", RETELL_KEY,
          "--event", "call_inbound", "--to", NUM_RET1], 0, "agent_ret_1"),
        (["--provider", "vapi", "--account", VAPI_SLUG, "--secret", VAPI_SECRET,
          "--event", "assistant-request", "--to", NUM_VAPI1], 0, "asst_vapi_1"),
        (["--provider", "vapi", "--account", VAPI_BEARER_SLUG, "--secret", VAPI_BEARER_SECRET,
          "--auth", "bearer", "--event", "assistant-request", "--to", NUM_VAPI_BEARER], 0,
         "asst_vapi_1"),
        (["--provider", "bland", "--account", BLAND_SLUG, "--secret", BLAND_SECRET,
          "--event", "dynamic_data", "--to", NUM_BLAND1], 0, "bland_agent_1"),
        (["--provider", "bland", "--account", BLAND_SLUG, "--secret", BLAND_SECRET,
          "--event", "dynamic_data", "--to", NUM_UNKNOWN], 1, "no agent"),
        (["--provider", "retell", "--account", RETELL_SLUG, "--secret", "wrong",
          "--event", "call_inbound", "--to", NUM_RET1], 1, "unauthorized"),
    ]
    for args, rc, text in cases:
        p = subprocess.run([tool, "--url", url] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        assert p.returncode == rc, (args, p.stdout, p.stderr)
        assert p.stdout.startswith("HTTP/1.1 "), p.stdout
        assert text in p.stdout, p.stdout
        json.loads(p.stdout.split("\n", 1)[1])
