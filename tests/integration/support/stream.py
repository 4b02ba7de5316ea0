# stream: a steady stream of signed routing requests and call events through a load balancer.
"""Stream: client threads sending signed Retell call_inbound (routing) and call_ended (call
events) to 127.0.0.1:port (HAProxy in the cluster tests), counted per phase."""

import http.client
import threading
import time

from support.data import NUM_RET1, RETELL_KEY, RETELL_SLUG
from support.ledger import new_id, retell_event
from support.signing import body_bytes, sw


class Stream:
    """Client threads through HAProxy: signed Retell call_inbound (routing) and call_ended
    (call events, each a new call id), alternating, on keep-alive connections.  Outcomes are
    counted per phase; call ids answered 200 are kept."""

    def __init__(self, port, senders=4):
        self.port = port
        self.phase = "steady"
        self.lock = threading.Lock()
        self.sent = {}
        self.bad = {}  # phase -> {status or exception name: n}
        self.events_200 = {}
        self.answered = set()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(k,)) for k in range(senders)]

    def one(self, conn, k, n):
        if n % 2:
            cid = new_id("cl%d_%d" % (k, n))
            body = body_bytes(retell_event("call_ended", cid, "inbound", NUM_RET1))
            h = {"Content-Type": "application/json"}
            h.update(sw.sign_headers("retell", RETELL_KEY, body, RETELL_SLUG, "hmac"))
        else:
            cid = None
            body = sw.build_payload("retell", "call_inbound", NUM_RET1, "+14155550123")
            h = {"Content-Type": "application/json"}
            h.update(sw.retell_headers(RETELL_KEY, body))
        conn.request("POST", sw.webhook_path("retell", RETELL_SLUG), body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        if cid is None and r.status == 200:
            assert b"agent_ret_1" in data, data
        return cid, r.status

    def run(self, k):
        conn = None
        n = 0
        while not self.done.is_set():
            phase = self.phase
            n += 1
            cid = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                cid, st = self.one(conn, k, n)
            except (OSError, http.client.HTTPException) as e:
                st = type(e).__name__
                if conn is not None:
                    conn.close()
                    conn = None
            with self.lock:
                self.sent[phase] = self.sent.get(phase, 0) + 1
                if st != 200:
                    b = self.bad.setdefault(phase, {})
                    b[st] = b.get(st, 0) + 1
                elif cid is not None:
                    self.answered.add(cid)
                    self.events_200[phase] = self.events_200.get(phase, 0) + 1
            if st != 200:
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    def set_phase(self, p):
        with self.lock:
            self.phase = p

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join()
