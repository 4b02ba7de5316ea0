# support/fs: small file systems for disk-fault tests (a tmpfs mounted on a directory, filled).
"""A tmpfs mounted on a test's directory (root only; callers skip when it cannot be mounted),
unmounted again, and filled to ENOSPC."""

import errno
import subprocess


def mount_tmpfs(path, size="64k"):
    """Mount a tmpfs of size on path; returns (mounted, why)."""
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode == 0, r.stdout.strip()


def umount(path):
    r = subprocess.run(["umount", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", str(path)])


def fill(path):
    """Fill the file system of path's directory; returns bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                n += f.write(b"\0" * 4096)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return n
