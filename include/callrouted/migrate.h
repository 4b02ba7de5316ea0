/* callrouted/migrate.h: the SQL migrations compiled in (callrouted --migrate, ctl migrate). */
#ifndef CALLROUTED_MIGRATE_H
#define CALLROUTED_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const size_t migrations_count;

/* The schema version this binary runs against (the newest migration). */
int migrate_target_version(void);
/* Apply every migration not yet recorded (also one numbered below the newest applied), in
 * order, one transaction each; a one-shot command, not on the event loop. */
bool migrate_run(const char *conninfo);
/* SQL that says whether the migrations table exists (one row, one boolean column); the
 * version query below would fail to parse where it does not. */
#define MIGRATE_EXISTS_SQL "SELECT to_regclass('callrouted_schema_migrations') IS NOT NULL"
/* SQL that returns the database's schema version as one row, one column (0: none applied), given
 * $1 the versions this binary embeds (an int[] literal, migrate_versions_literal): a version
 * recorded above the binary's newest when there is one (newer), else the highest embedded
 * version v with every embedded version up to v applied, so a database that lacks one of the
 * binary's migrations numbered below its newest (merged late) reads as older and is told to
 * run --migrate, while a number no branch merged yet (a gap in the binary's list) is not asked
 * for. */
#define MIGRATE_VERSION_SQL                                                                        \
	"WITH e AS (SELECT unnest($1::int[]) AS v), d AS (SELECT version AS v FROM "               \
	"callrouted_schema_migrations), m AS (SELECT min(v) AS v FROM e WHERE v NOT IN "           \
	"(SELECT v FROM d)) "                                                                      \
	"SELECT CASE WHEN (SELECT max(v) FROM d) > (SELECT max(v) FROM e) THEN (SELECT max(v) "    \
	"FROM d) WHEN (SELECT v FROM m) IS NOT NULL THEN coalesce((SELECT max(e.v) FROM e, m "     \
	"WHERE e.v < m.v), 0) ELSE coalesce((SELECT max(v) FROM e), 0) END"
/* "{1,2,3,...}": the embedded versions, for MIGRATE_VERSION_SQL's $1; false if out of room. */
bool migrate_versions_literal(char *out, size_t outlen);

#endif
