# test_stop: graceful stop under a stream of call events: memory-safe, exit 0, nothing lost.
"""Issue 10, point 9: SIGTERM while the workers have call events waiting on the journal.

Each cycle starts the daemon on the same state directory, sends signed call-end events from
several threads (half of them open a connection per request, as providers do, half keep theirs
open, as a proxy in front of the daemon does: their requests keep coming on open connections
after the listeners close), and sends SIGTERM while they are in flight: the daemon exits 0 with
no sanitizer report in its log.  After the last cycle a daemon starts again on that state
directory (the database up all along) and every event that was answered 200 is in usage_ledger
exactly once."""

import http.client
import threading
import time

from support.build import SLOW
from support.data import NUM_RET1, RETELL_KEY, RETELL_SLUG
from support.ledger import ledger_ids, new_id, post_retell, retell_event, wait_drained
from support.polling import wait_for
from support.signing import body_bytes, sw

CYCLES = 10
SENDERS = 6


class Stream:
    """Threads posting call_ended events until stopped; records what was answered 200."""

    def __init__(self, d, cycle):
        self.d = d
        self.cycle = cycle
        self.answered = set()
        self.outcomes = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(k,)) for k in range(SENDERS)]

    def post_keepalive(self, conn, cid):
        body = body_bytes(retell_event("call_ended", cid, "inbound", NUM_RET1))
        h = {"Content-Type": "application/json"}
        h.update(sw.sign_headers("retell", RETELL_KEY, body, RETELL_SLUG, "hmac"))
        conn.request("POST", sw.webhook_path("retell", RETELL_SLUG), body=body, headers=h)
        r = conn.getresponse()
        r.read()
        return r.status

    def run(self, k):
        n = 0
        conn = None
        while not self.done.is_set():
            cid = new_id("stop%d_%d_%d" % (self.cycle, k, n))
            n += 1
            try:
                if k % 2:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=5)
                    st = self.post_keepalive(conn, cid)
                else:
                    st = post_retell(self.d, retell_event("call_ended", cid, "inbound",
                                                          NUM_RET1)).status
            except (OSError, http.client.HTTPException) as e:
                st = type(e).__name__
                if conn is not None:
                    conn.close()
                    conn = None
            with self.lock:
                self.outcomes[st] = self.outcomes.get(st, 0) + 1
                if st == 200:
                    self.answered.add(cid)
            if st != 200:
                time.sleep(0.005)  # refused once the listeners close: do not spin
        if conn is not None:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.answered)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join()


def test_repeated_sigterm_under_load_loses_nothing(env):
    d = env.daemon({"workers": 4, "instance_name": "stop-1"}, name="stop")
    answered = set()
    for cycle in range(CYCLES):
        d.start()
        s = Stream(d, cycle)
        s.start()
        try:
            # land the SIGTERM in the middle of the stream, at a different point each cycle
            wait_for(lambda: s.count() >= 20 + 7 * cycle, 20.0 * SLOW, interval=0.001,
                     what="events answered in cycle %d" % cycle)
            t0 = time.monotonic()
            rc = d.stop(timeout=20.0)
            took = time.monotonic() - t0
        finally:
            s.stop()
        answered |= s.answered
        print("cycle %d: stop took %.2fs, exit %r; outcomes %r"
              % (cycle, took, rc, s.outcomes))
        assert rc == 0, "cycle %d: exit %r after SIGTERM\n%s" % (cycle, rc, d.log_tail(60))
        bad = d.bad_log_text()
        assert not bad, "cycle %d: log contains %s\n%s" % (cycle, bad, d.log_tail(80))
        # answers are 200 or no answer at all (a connection closed by the stop): never a 5xx
        assert all(k == 200 or not isinstance(k, int) for k in s.outcomes), s.outcomes

    # the database was up all along; a last start drains what the last stop left journaled
    d2 = env.start({"workers": 4, "instance_name": "stop-2", "state_dir": str(d.state_dir)},
                   name="stop-final")
    wait_drained(d2, timeout=20.0)
    got = ledger_ids(env.conn)
    missing = answered - set(got)
    print("%d events answered 200 over %d stops; %d ledger rows" % (len(answered), CYCLES,
                                                                    len(got)))
    assert not missing, "%d events answered 200 are not in the ledger, e.g. %r" % (
        len(missing), sorted(missing)[:5])
    twice = {k: v for k, v in got.items() if v != 1}
    assert not twice, "ledger rows not exactly once: %r" % dict(list(twice.items())[:5])
