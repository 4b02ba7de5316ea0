# test_config: --check-config and start-up with good and bad configuration files.
"""Acceptance: a bad key or value is reported with file, line and key, and exits 1."""

import re

from support.build import run_cli
from support.net import free_port


def conf_lines(tmp_path, lines, name="t.conf"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def good_lines(pg, tmp_path):
    return [
        "# callrouted test configuration",
        'database_url = "%s"' % pg.url(),
        "listen = 127.0.0.1:%d" % free_port(),
        "admin_listen = 127.0.0.1:%d" % free_port(),
        'state_dir = "%s"' % tmp_path,
        "",
        "log_level = debug   # trailing comment",
        "refresh_interval = 5m",
        "reconnect_interval = 250ms",
        "signature_tolerance = 300",
        "max_body_bytes = 1M",
        "workers = 2",
        'instance_name = "test-1"',
        'vapi_no_agent_message = "Sorry, # not a comment."',
    ]


def assert_names(err, path, line, key):
    assert str(path) in err, "file not named: %r" % err
    assert re.search(r"(:|line )%d\b" % line, err), "line %d not named: %r" % (line, err)
    assert key in err, "key %r not named: %r" % (key, err)


def test_good_config(pg, binary, tmp_path):
    p = conf_lines(tmp_path, good_lines(pg, tmp_path))
    r = run_cli("-c", p, "--check-config")
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_unknown_key(pg, binary, tmp_path):
    lines = good_lines(pg, tmp_path)
    lines.insert(2, "listen_adress = 127.0.0.1:1")      # line 3
    p = conf_lines(tmp_path, lines)
    r = run_cli("-c", p, "--check-config")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert_names(r.stderr, p, 3, "listen_adress")


def test_bad_value(pg, binary, tmp_path):
    lines = good_lines(pg, tmp_path)
    lines[6] = "log_level = loud"                        # line 7
    p = conf_lines(tmp_path, lines)
    r = run_cli("-c", p, "--check-config")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert_names(r.stderr, p, 7, "log_level")


def test_bad_values_of_other_types(pg, binary, tmp_path):
    for lineno, line, key in [(8, "refresh_interval = 5 parsecs", "refresh_interval"),
                              (9, "reconnect_interval = -1s", "reconnect_interval"),
                              (11, "max_body_bytes = lots", "max_body_bytes"),
                              (12, "workers = many", "workers")]:
        lines = good_lines(pg, tmp_path)
        lines[lineno - 1] = line
        p = conf_lines(tmp_path, lines, "bad-%d.conf" % lineno)
        r = run_cli("-c", p, "--check-config")
        assert r.returncode == 1, (line, r.stdout, r.stderr)
        assert_names(r.stderr, p, lineno, key)


def test_daemon_refuses_bad_config(pg, binary, tmp_path):
    lines = good_lines(pg, tmp_path)
    lines.append("no_such_key = 1")
    p = conf_lines(tmp_path, lines)
    r = run_cli("-c", p, timeout=15)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert_names(r.stderr, p, len(lines), "no_such_key")


def test_missing_config_file(binary, tmp_path):
    r = run_cli("-c", tmp_path / "absent.conf", "--check-config")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "absent.conf" in r.stderr


def test_version_and_help(binary):
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip(), (r.stdout, r.stderr)
    r = run_cli("--help")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "database_url" in r.stdout + r.stderr
