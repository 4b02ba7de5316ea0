-- 009_instances: every daemon's own row, kept up to date by it (daemon/instances.c), so an
-- operator sees the fleet: callroutectl instances.

-- One row per instance_name (each daemon's configuration names itself; keep the names unique:
-- a daemon does not overwrite the live row of another host or state_dir under its name, it logs
-- a warning instead; a stale row, or its own predecessor's on the same state_dir, it takes).
-- heartbeat_at is the database's clock at the last write (every 5 s), so staleness is measured
-- on one clock: a row whose heartbeat is older than 15 s belongs to a daemon that stopped,
-- crashed or lost the database.
--   route_generation   the daemon's own route table generation (counts its reloads since it
--                      started: not comparable between daemons)
--   change_generation  the shared change counter the daemon's table reflects (issue 14's
--                      change feed: the same on every daemon that is up to date); NULL until
--                      the route loader reports one
--   journal_backlog    journal records durable and not yet in the ledger
CREATE TABLE callrouted_instances (
	instance_name     text PRIMARY KEY CHECK (length(instance_name) BETWEEN 1 AND 255),
	version           text NOT NULL,
	hostname          text NOT NULL,
	pid               integer NOT NULL,
	listen            text NOT NULL,
	admin_listen      text NOT NULL,
	started_at        timestamptz NOT NULL,
	heartbeat_at      timestamptz NOT NULL,
	route_generation  bigint NOT NULL,
	change_generation bigint NULL,
	route_source      text NOT NULL CHECK (route_source IN ('database', 'snapshot', 'none')),
	numbers           bigint NOT NULL,
	journal_backlog   bigint NOT NULL,
	journal_bytes     bigint NOT NULL,
	journal_writable  boolean NOT NULL,
	state_dir         text NOT NULL
);
