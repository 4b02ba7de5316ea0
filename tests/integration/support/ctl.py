# ctl: callroutectl run by the tests (piped, or with its stdout on a pseudo-terminal).
"""ctl(), ctl_tty() and ok() for test_callroutectl.py, test_admin_strict.py and the others."""

import os
import pty
import subprocess

from support.build import SLOW, callrouted_bin, daemon_env

CTL = callrouted_bin().parent / "callroutectl"


def ctl(*args, env=None, timeout=60):
    """Run callroutectl; CALLROUTED_URL / CALLROUTED_TOKEN only when env gives them."""
    e = {k: v for k, v in daemon_env().items() if k not in ("CALLROUTED_URL", "CALLROUTED_TOKEN")}
    e.update(env or {})
    return subprocess.run([str(CTL)] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=e, timeout=timeout * SLOW)


def ctl_tty(*args, env=None, timeout=60):
    """callroutectl with its stdout on a pseudo-terminal (stderr still a pipe), as a person
    at a terminal runs it; returns a CompletedProcess with the terminal's text as stdout."""
    e = {k: v for k, v in daemon_env().items() if k not in ("CALLROUTED_URL", "CALLROUTED_TOKEN")}
    e.update(env or {})
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([str(CTL)] + [str(a) for a in args], stdout=slave,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=e)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        err = p.stderr.read()
        p.stderr.close()
        rc = p.wait(timeout=timeout * SLOW)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return subprocess.CompletedProcess(p.args, rc, out.decode().replace("\r\n", "\n"), err)


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (r.returncode, r.stdout,
                                                                    r.stderr)
    return r
