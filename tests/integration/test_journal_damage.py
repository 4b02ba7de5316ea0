# test_journal_damage: a damaged journal loses only what is damaged (issue 10, point 1).
"""Call events answered 200 while PostgreSQL is unreachable stay in the journal: three runs of
the daemon, four events each, make three segments.  The files are then damaged in several
shapes (byte flips in a header and in a payload, a cut, a zeroed segment, swapped segment
names, bad checkpoints), a daemon is started on each damaged copy against a fresh database,
and the ledger must hold exactly the events whose records are intact, once each; the damaged
segments must be in journal/quarantine/ with their bytes, and the metrics must count them."""

import shutil
import struct

import pytest

from support.build import SLOW
from support.data import NUM_RET1, insert_standard_data
from support.env import Env
from support.ledger import count, ledger_ids, new_id, post_retell, retell_event, wait_drained
from support.net import free_port
from support.polling import wait_for

HDR = 16
RUNS, PER_RUN = 3, 4


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def parse_segment(data):
    """[(offset, size, seq, call id)] of a pristine segment."""
    out, off = [], 0
    while off < len(data):
        length, _crc, seq = struct.unpack_from("<IIQ", data, off)
        payload = data[off + HDR: off + HDR + length]
        cid = payload.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
        out.append((off, HDR + length, seq, cid))
        off += HDR + length
    assert off == len(data)
    return out


_built = {}


def build(env):
    """The pristine state directory (made once per module): 3 segments of 4 answered events."""
    if _built:
        return _built
    a = env.start(name="seed")
    snap = a.state_dir / "routes.snapshot"
    wait_for(lambda: snap.exists() and snap.stat().st_size > 0, 10.0 * SLOW,
             what="the route snapshot")
    assert a.stop() == 0, a.log_tail()
    closed = env.pg.url(env.dbname, port=free_port())
    ids = []
    for run in range(RUNS):
        d = env.daemon({"state_dir": str(a.state_dir)}, database_url=closed,
                       name="offline%d" % run).start()
        for _ in range(PER_RUN):
            cid = new_id("jd")
            r = post_retell(d, retell_event("call_ended", cid, "inbound", NUM_RET1))
            assert r.status == 200, r
            ids.append(cid)
        assert d.stop() == 0, d.log_tail()
    pristine = env.tmp / "pristine"
    shutil.copytree(a.state_dir, pristine)
    jdir = pristine / "journal"
    segs = sorted(p.name for p in jdir.glob("*.jnl"))
    assert len(segs) == RUNS, segs
    recs = {name: parse_segment((jdir / name).read_bytes()) for name in segs}
    assert [r[3] for name in segs for r in recs[name]] == ids
    _built.update(pristine=pristine, segs=segs, recs=recs, ids=ids)
    return _built


def metrics(d):
    r = d.admin("GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        if line.startswith("callrouted_journal_"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def fresh_env(env, tag):
    """A second world on the same cluster: its own migrated database with the standard data
    (the same ids, so the journaled attributions hold)."""
    e = Env(env.pg, env.tmp / tag, env.item)
    e.tmp.mkdir()
    e.create_db()
    e.migrate()
    e.ids = insert_standard_data(e.conn)
    assert e.ids.agent_ret1 == env.ids.agent_ret1 and e.ids.num_ret1 == env.ids.num_ret1
    return e


# ---- the shapes: (what they do to the copied journal dir, ids lost, segments quarantined,
#      checkpoint resets) ----

def flip(path, off, mask=0xFF):
    b = bytearray(path.read_bytes())
    b[off] ^= mask
    path.write_bytes(bytes(b))


def shape_flips(jdir, b):
    s0, s1 = b["segs"][0], b["segs"][1]
    r0, r1 = b["recs"][s0][2], b["recs"][s1][1]
    flip(jdir / s0, r0[0] + 1)                 # a length field: framing lost
    flip(jdir / s1, r1[0] + HDR + 10, 0x04)    # a payload byte: the length still frames it
    return {r0[3], r1[3]}, {s0, s1}, 0


def shape_header_seq_and_crc(jdir, b):
    s2 = b["segs"][2]
    r = b["recs"][s2]
    flip(jdir / s2, r[0][0] + 9)               # the first record's sequence number
    flip(jdir / s2, r[2][0] + 5)               # the third's CRC
    return {r[0][3], r[2][3]}, {s2}, 0


def shape_cut(jdir, b):
    s1 = b["segs"][1]
    r = b["recs"][s1]
    p = jdir / s1
    p.write_bytes(p.read_bytes()[: r[2][0] + 7])   # in the third record's header
    return {r[2][3], r[3][3]}, {s1}, 0


def shape_zeroed(jdir, b):
    s0 = b["segs"][0]
    p = jdir / s0
    p.write_bytes(bytes(p.stat().st_size))
    return {r[3] for r in b["recs"][s0]}, {s0}, 0


def shape_swapped(jdir, b):
    s0, s2 = b["segs"][0], b["segs"][2]
    (jdir / s0).rename(jdir / "tmp")
    (jdir / s2).rename(jdir / s0)
    (jdir / "tmp").rename(jdir / s2)
    return set(), {s0, s2}, 0


def shape_checkpoint_ahead(jdir, b):
    seq = 1000
    crc = crc32c(struct.pack("<Q", seq))
    (jdir / "checkpoint").write_text("checkpoint %d %08x\n" % (seq, crc))
    return set(), set(), 1


def shape_checkpoint_bad_crc(jdir, b):
    seq = 6
    crc = crc32c(struct.pack("<Q", seq)) ^ 0x10
    (jdir / "checkpoint").write_text("checkpoint %d %08x\n" % (seq, crc))
    return set(), set(), 1


def shape_checkpoint_garbage(jdir, b):
    (jdir / "checkpoint").write_bytes(b"\x00\xffnot a number\n")
    return set(), set(), 1


SHAPES = {
    "flips": shape_flips,
    "header_seq_and_crc": shape_header_seq_and_crc,
    "cut": shape_cut,
    "zeroed": shape_zeroed,
    "swapped": shape_swapped,
    "checkpoint_ahead": shape_checkpoint_ahead,
    "checkpoint_bad_crc": shape_checkpoint_bad_crc,
    "checkpoint_garbage": shape_checkpoint_garbage,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_damaged_journal_loses_only_what_is_damaged(env, shape):
    b = build(env)
    e = fresh_env(env, shape)
    try:
        state = e.tmp / "state"
        shutil.copytree(b["pristine"], state)
        jdir = state / "journal"
        lost, quarantined, resets = SHAPES[shape](jdir, b)
        damaged = {name: (jdir / name).read_bytes() for name in quarantined}

        d = e.start({"state_dir": str(state), "instance_name": "damage-" + shape},
                    name="after")
        wait_drained(d)
        want = set(b["ids"]) - lost
        wait_for(lambda: set(ledger_ids(e.conn)) >= want, 10.0 * SLOW,
                 what="the intact events in the ledger")
        got = ledger_ids(e.conn)
        assert set(got) == want, "ledger: missing %r, extra %r" % (
            sorted(want - set(got)), sorted(set(got) - want))
        assert set(got.values()) == {1}, got
        assert count(e.conn, "calls") == len(want)

        # the damaged segments are kept, byte for byte, in quarantine/ (once drained)
        qdir = jdir / "quarantine"

        def kept():
            have = sorted(p.read_bytes() for p in qdir.iterdir()) if qdir.is_dir() else []
            return have == sorted(damaged.values())
        wait_for(kept, 5.0 * SLOW, what="the damaged segments in quarantine/")
        m = metrics(d)
        assert m["callrouted_journal_quarantined_segments_total"] == len(quarantined), m
        assert (m["callrouted_journal_corrupt_records_total"] > 0) == bool(lost), m
        assert m["callrouted_journal_checkpoint_resets_total"] == resets, m
        log = d.log()
        for name in quarantined:
            lines = [ln for ln in log.splitlines() if name in ln and " error: " in ln]
            assert len(lines) == 1, "want one error line naming %s:\n%s" % (
                name, d.log_tail(40))

        # new events are numbered above everything seen, and drain too
        cid = new_id("after")
        r = post_retell(d, retell_event("call_ended", cid, "inbound", NUM_RET1))
        assert r.status == 200, r
        wait_drained(d)
        assert ledger_ids(e.conn).get(cid) == 1
        highest = max(r[2] for recs in b["recs"].values() for r in recs)
        assert d.readyz().json()["journal"]["durable_seq"] > highest

        # a restart after the drain: the checkpoint is trusted, nothing is drained again or
        # quarantined again
        assert d.stop() == 0, d.log_tail()
        d2 = e.start({"state_dir": str(state), "instance_name": "damage-" + shape},
                     name="restart")
        j = wait_drained(d2)
        m = metrics(d2)
        assert m["callrouted_journal_checkpoint_resets_total"] == 0, (m, d2.log_tail(20))
        assert m["callrouted_journal_quarantined_segments_total"] == 0, m
        assert j["pending"] == 0 and j["checkpoint_seq"] == j["durable_seq"], j
        assert ledger_ids(e.conn) == dict(got, **{cid: 1})
    finally:
        e.finish()
