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
/* SQL that returns the database's schema version as one row, one column (0: none applied): the
 * highest version v with every version 1..v applied, so a database that lacks a migration
 * numbered below its newest (merged late) reads as older and is told to run --migrate. */
#define MIGRATE_VERSION_SQL                                                                        \
	"SELECT coalesce((SELECT min(v) - 1 FROM generate_series(1, (SELECT max(version) FROM "    \
	"callrouted_schema_migrations)) v WHERE v NOT IN (SELECT version FROM "                    \
	"callrouted_schema_migrations)), (SELECT coalesce(max(version), 0) FROM "                  \
	"callrouted_schema_migrations))"

#endif
