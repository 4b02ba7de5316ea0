# lag: reassign a number in the database and time until a daemon routes it so.
"""reassign() commits a number's new agent; lag() / lags() measure from just after that commit
until one daemon / each of several daemons (polled together) routes the number to the agent."""

import time

from support.admin_api import route_retell
from support.polling import wait_for


def reassign(conn, e164, agent_id):
    conn.execute("UPDATE phone_numbers SET agent_id = %s WHERE e164 = %s AND status = 'active'",
                 (agent_id, e164))


def lags(ds, e164, want, t0, timeout):
    """Seconds from t0 until each of ds routes e164 to want (polled together)."""
    got = {}
    deadline = t0 + timeout
    while len(got) < len(ds):
        assert time.monotonic() < deadline, "%s: %s not routed to %s" % (
            [d.name for d in ds if d.name not in got], e164, want)
        for d in ds:
            if d.name not in got and route_retell(d, e164) == want:
                got[d.name] = time.monotonic() - t0
        time.sleep(0.001)
    return [got[d.name] for d in ds]


def lag(d, e164, want, t0, timeout):
    """Seconds from t0 (just after the commit) until d routes e164 to want."""
    wait_for(lambda: route_retell(d, e164) == want or None, timeout, 0.002,
             "%s: %s routed to %s" % (d.name, e164, want))
    return time.monotonic() - t0
