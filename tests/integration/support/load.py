# load: latency figures, load generators (drip and flood) and the process's descriptor limit.
"""The load side of test_hardening.py: workers meant to run in a child process."""

import selectors
import socket
import threading
import time

from support.data import NUM_BLAND1, NUM_RET1, NUM_VAPI1
from support.rawhttp import RESET_ERRNOS, Closed, RawConn, Reset, signed_raw


# ---- latency figures ----

def percentile(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def figures(lat_s):
    ms = [x * 1000 for x in lat_s]
    return {"n": len(ms), "p50": percentile(ms, 50), "p99": percentile(ms, 99),
            "max": max(ms) if ms else float("nan")}


def fmt(f):
    return "n=%d p50=%.1f ms p99=%.1f ms max=%.1f ms" % (f["n"], f["p50"], f["p99"], f["max"])


# ---- load generators (run in a child process: no GIL shared with the measuring client) ----

def drip_worker(port, n_drip, n_idle, duration, interval, conn, ready):
    """Keep n_drip connections that send a request head one byte per `interval` and n_idle
    that send nothing open for `duration` s: each one the daemon closes is replaced at once.
    Reports one record per connection through conn (a multiprocessing Pipe end):
    (kind, 'eof' | 'reset' | 'error' | 'open', seconds from open to close, first bytes
    received, bytes sent)."""
    head = (b"POST /v1/webhooks/retell/ret-a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nX-Padding: " + b"x" * 4096)
    sel = selectors.DefaultSelector()
    live = []
    done = []

    def open_one(kind):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        rec = {"s": s, "kind": kind, "sent": 0, "got": b"", "t": time.monotonic()}
        sel.register(s, selectors.EVENT_READ, rec)
        live.append(rec)

    for i in range(n_drip + n_idle):
        open_one("drip" if i < n_drip else "idle")
    ready.set()
    t_end = time.monotonic() + duration
    next_drip = time.monotonic()
    while time.monotonic() < t_end:
        now = time.monotonic()
        if now >= next_drip:
            for rec in live:
                if rec["kind"] != "drip":
                    continue
                try:
                    if rec["s"].send(head[rec["sent"]:rec["sent"] + 1]) == 1:
                        rec["sent"] += 1
                except OSError:
                    pass  # closed by the daemon: the read side reports it
            next_drip = now + interval
        for key, _ in sel.select(timeout=min(0.02, max(0.0, next_drip - time.monotonic()))):
            rec = key.data
            try:
                d = rec["s"].recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                d = None
                out = "reset" if e.errno in RESET_ERRNOS else "error"
            else:
                out = "eof" if not d else None
            if d:
                rec["got"] += d
                continue
            sel.unregister(rec["s"])
            rec["s"].close()
            live.remove(rec)
            done.append((rec["kind"], out, time.monotonic() - rec["t"], rec["got"][:64],
                         rec["sent"]))
            open_one(rec["kind"])
    for rec in live:
        done.append((rec["kind"], "open", None, rec["got"][:64], rec["sent"]))
        rec["s"].close()
    conn.send(done)
    conn.close()


def flood_worker(port, seconds, threads, conn, ready):
    """`threads` threads, each on keep-alive connections, send badly signed routing requests
    (Retell, Vapi, Bland in turn) as fast as answers come back.  Reports
    {status: count, 'reset': n, ...} through conn."""
    reqs = [signed_raw("retell", NUM_RET1, wrong_secret=True),
            signed_raw("vapi", NUM_VAPI1, wrong_secret=True),
            signed_raw("bland", NUM_BLAND1, wrong_secret=True)]
    counts = {}
    lock = threading.Lock()
    start = threading.Event()

    def run(k):
        mine = {}
        c = None
        i = k
        start.wait()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            try:
                if c is None:
                    c = RawConn(port)
                c.send(reqs[i % 3])
                r = c.read_response(5.0)
                mine[r.status] = mine.get(r.status, 0) + 1
                if r.header("connection") == "close":
                    c.close()
                    c = None
            except (Reset, Closed, OSError) as e:
                key = type(e).__name__
                mine[key] = mine.get(key, 0) + 1
                if c is not None:
                    c.close()
                c = None
            i += 1
        if c is not None:
            c.close()
        with lock:
            for k2, v in mine.items():
                counts[k2] = counts.get(k2, 0) + v

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    ready.set()
    start.set()
    for t in ts:
        t.join()
    conn.send(counts)
    conn.close()


def raise_nofile(n):
    """Raise this process's RLIMIT_NOFILE soft limit to n (not above the hard limit)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
