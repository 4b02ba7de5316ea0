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
/* SQL that returns the versions recorded, one row each, in order (migrate_schema_version makes
 * the database's schema version of them). */
#define MIGRATE_VERSION_SQL "SELECT version FROM callrouted_schema_migrations ORDER BY version"
/* The database's schema version, from its recorded versions: the newest of this binary's
 * migrations with every one of them up to it recorded, so a database that lacks a migration
 * numbered below its newest (merged late) reads as older and is told to run --migrate; numbers
 * this binary has no migration for (left free for branches not merged yet) are not asked for.
 * A recorded version above this binary's newest: that version (the schema is newer). */
int migrate_schema_version(const int *recorded, size_t n);

#endif
