# notify: a NOTIFY_SOCKET listener playing systemd's part, and the fields of one notification.
"""NotifySocket records what the daemon sends with sd_notify(); fields() splits KEY=VALUE lines."""

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

# ---- sd_notify ----

class NotifySocket:
    """An AF_UNIX SOCK_DGRAM socket playing systemd's part: records (monotonic time, text)."""

    def __init__(self, on_message=None):
        # sun_path is 108 bytes: a short directory of its own, not pytest's tmp_path
        self.dir = Path(tempfile.mkdtemp(prefix="cr-notify-"))
        self.path = str(self.dir / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.msgs = []
        self.on_message = on_message
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            text = data.decode(errors="replace")
            extra = None
            if self.on_message:
                try:
                    extra = self.on_message(text)
                except Exception as e:  # noqa: BLE001 (recorded, checked by the test)
                    extra = e
            with self.cond:
                self.msgs.append((t, text, extra))
                self.cond.notify_all()

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def snapshot(self):
        with self.cond:
            return list(self.msgs)

    def wait(self, pred, timeout, start=0, what="datagram"):
        """The first message at index >= start whose text satisfies pred: (index, t, text, extra)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.msgs)):
                    t, text, extra = self.msgs[i]
                    if pred(text):
                        return i, t, text, extra
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1fs; got: %r" % (
                        what, timeout, [m[1] for m in self.msgs[start:]][-20:]))
                self.cond.wait(left)


def fields(text):
    """KEY=VALUE lines of one notification."""
    out = {}
    for line in text.split("\n"):
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out
