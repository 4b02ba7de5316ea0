# support: the integration tests' support code, one module per thing (see README "Testing").
"""Support code of the black-box integration tests, imported by conftest.py and the tests.

build         the binary under test, the build's mode (sanitizers, valgrind, TSan), SLOW
polling       wait_for() and timer()
net           free loopback ports and plain HTTP requests (Response, http_request)
cluster       the throwaway PostgreSQL cluster (PgCluster, RestartablePg)
daemon        the daemon under test (Daemon, config_text)
env           one test's world (Env: database, standard data ids, daemons; env_daemon)
data          the standard test data set and the names of its keys and numbers
signing       signed webhook requests (sw: tools/send-webhook's signing code)
rawhttp       a raw-socket HTTP client and signed raw requests (RawConn, signed_raw)
load          latency figures, load generators, the descriptor limit
scrape        /metrics parsed (Scrape, scrape)
notify        a NOTIFY_SOCKET listener (NotifySocket, fields)
ledger        call-event payloads of each provider and ledger queries
admin_api     the admin API's tokens and client, routing probes
sandbox       tools/sandbox run as a process, a daemon pointed at it
api_sandbox   the sandbox as the admin API tests' provider (ApiSandbox, start_api)
pki           a throwaway test PKI (make_test_pki)
ctl           callroutectl run by the tests (ctl, ctl_tty, ok)
"""
