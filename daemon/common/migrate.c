/* common/migrate.c: applying the embedded SQL migrations (callrouted --migrate, ctl migrate). */
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "callrouted/log.h"
#include "callrouted/migrate.h"
#include "callrouted/pq_notice.h"
#include "callrouted/progress_log.h"

int
migrate_target_version(void)
{
	return migrations_count ? migrations[migrations_count - 1].version : 0;
}

int
migrate_schema_version(const int *recorded, size_t n)
{
	int newest = 0, v = 0;

	for (size_t k = 0; k < n; k++)
		newest = recorded[k] > newest ? recorded[k] : newest;
	if (newest > migrate_target_version())
		return newest;
	for (size_t i = 0; i < migrations_count; i++) {
		bool found = false;

		for (size_t k = 0; k < n && !found; k++)
			found = recorded[k] == migrations[i].version;
		if (!found)
			break;
		v = migrations[i].version;
	}
	return v;
}

static bool
migrate_exec(PGconn *conn, const char *sql, const char *what)
{
	PGresult *r = PQexec(conn, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok) {
		const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		/* the server's own words (a migration's RAISE says what to fix), one line */
		if (m)
			log_error("migrate: %s: %s (SQLSTATE %s)", what, log_esc(m), st ? st : "?");
		else
			log_error("migrate: %s: %s", what, log_esc(PQresultErrorMessage(r)));
	}
	PQclear(r);
	return ok;
}

bool
migrate_run(const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);
	bool *applied = calloc(migrations_count + 1, sizeof(*applied));
	PGresult *r;
	int current;
	bool ok = false;
	size_t pending;
	struct progress pg;

	if (!applied) {
		log_error("migrate: out of memory");
		goto done;
	}

	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("migrate: could not connect to the database: %s",
			log_esc(PQerrorMessage(conn)));
		goto done;
	}
	pq_notice_install(conn, "migrate");
	/*
	 * One migrator at a time, from the very first statement: two processes creating the
	 * migrations table at once would collide in the catalogue (a unique violation on
	 * pg_type).  The others wait here, then find everything applied.  The lock is the
	 * session's: PQfinish releases it, whatever happened.
	 */
	if (!migrate_exec(conn, "SELECT pg_advisory_lock(4242001)", "lock") ||
		!migrate_exec(conn, "SET client_min_messages = warning", "set") ||
		!migrate_exec(conn,
			"CREATE TABLE IF NOT EXISTS callrouted_schema_migrations ("
			" version int PRIMARY KEY, name text NOT NULL,"
			" applied_at timestamptz NOT NULL DEFAULT now())",
			"create callrouted_schema_migrations"))
		goto done;
	r = PQexec(conn, "SELECT version FROM callrouted_schema_migrations ORDER BY version");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_error("migrate: could not read the schema version: %s",
			log_esc(PQresultErrorMessage(r)));
		PQclear(r);
		goto done;
	}
	/* applied[i]: migrations[i] is recorded; current: the newest recorded */
	current = 0;
	pending = migrations_count;
	for (int row = 0; row < PQntuples(r); row++) {
		int v = atoi(PQgetvalue(r, row, 0));

		current = v > current ? v : current;
		for (size_t i = 0; i < migrations_count; i++)
			if (migrations[i].version == v && !applied[i]) {
				applied[i] = true;
				pending--;
			}
	}
	PQclear(r);
	if (current > migrate_target_version()) {
		log_error(
			"migrate: the database schema is at version %d, newer than this binary's %d",
			current, migrate_target_version());
		goto done;
	}
	if (pending == 0) {
		log_info("migrate: schema is up to date at version %d", current);
		ok = true;
		goto done;
	}
	progress_init(&pg, "migrate", "migrations", pending, 1);
	for (size_t i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		char ver[32];
		const char *params[2] = { ver, m->name };

		if (applied[i])
			continue;
		snprintf(ver, sizeof(ver), "%d", m->version);
		if (!migrate_exec(conn, "BEGIN", "begin"))
			goto done;
		if (!migrate_exec(conn, m->sql, m->name)) {
			migrate_exec(conn, "ROLLBACK", "rollback");
			goto done;
		}
		r = PQexecParams(conn,
			"INSERT INTO callrouted_schema_migrations (version, name) VALUES ($1, $2)",
			2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_error("migrate: could not record %s: %s", m->name,
				log_esc(PQresultErrorMessage(r)));
			PQclear(r);
			migrate_exec(conn, "ROLLBACK", "rollback");
			goto done;
		}
		PQclear(r);
		if (!migrate_exec(conn, "COMMIT", "commit"))
			goto done;
		log_info("migrate: applied %s", m->name);
		current = m->version > current ? m->version : current;
		progress_log_tick(&pg, pg.done + 1);
	}
	progress_log_end(&pg);
	log_info("migrate: schema is at version %d", current);
	ok = true;
done:
	free(applied);
	PQfinish(conn);
	return ok;
}
