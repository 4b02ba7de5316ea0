# test_journal_probe: a journal that could not be written comes back by itself, with no event.
"""A load balancer sends no traffic to an instance whose /readyz says the journal is not
writable, so the journal must find out by itself that the disk is usable again: the writer
probes every second while appends are failing."""


import pytest

from support.build import SLOW
from support.data import NUM_RET1
from support.fs import fill, mount_tmpfs, umount
from support.ledger import ledger_ids, new_id, post_retell, retell_event, wait_drained
from support.polling import wait_for


def test_not_writable_journal_recovers_without_traffic(env):
    jdir = env.tmp / "state-probe" / "journal"
    jdir.mkdir(parents=True)
    mounted, why = mount_tmpfs(jdir)
    if not mounted:
        pytest.skip("cannot mount a tmpfs on the journal directory here: " + why)
    d = env.daemon({"instance_name": "probe-1", "state_dir": str(jdir.parent)}, name="probe")
    try:
        d.start()
        first = new_id("pre")
        assert post_retell(d, retell_event("call_ended", first, "inbound", NUM_RET1)).status == 200
        wait_drained(d)
        filler = jdir / "filler"
        fill(filler)
        statuses = [post_retell(d, retell_event("call_ended", new_id("full"), "inbound",
                                                NUM_RET1)).status for _ in range(30)]
        assert statuses[-3:] == [503] * 3, statuses
        wait_for(lambda: d.readyz().status == 503, 5.0 * SLOW,
                 what="/readyz 503 while the journal cannot be written")
        filler.unlink()
        # no event is sent: the writer's probe alone must see the disk usable again
        _, waited = wait_for(lambda: d.readyz().status == 200, 5.0 * SLOW,
                             what="/readyz 200 again without traffic")
        print("journal writable again %.2f s after the disk was freed" % waited)
        assert "journal: writable again" in d.log(), d.log_tail(20)
        after = new_id("post")
        assert post_retell(d, retell_event("call_ended", after, "inbound", NUM_RET1)).status == 200
        wait_drained(d)
        got = ledger_ids(env.conn)
        assert got.get(first) == 1 and got.get(after) == 1, got
    finally:
        rc = d.stop() if d.running() else 0
        umount(jdir)
    assert rc == 0
