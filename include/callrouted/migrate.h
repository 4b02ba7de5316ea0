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
/* Apply pending migrations, one transaction each; a one-shot command, not on the event loop. */
bool migrate_run(const char *conninfo);
/* SQL that says whether the migrations table exists (one row, one boolean column); the
 * version query below would fail to parse where it does not. */
#define MIGRATE_EXISTS_SQL "SELECT to_regclass('callrouted_schema_migrations') IS NOT NULL"
/* SQL that returns the database's schema version as one row, one column (0: none applied). */
#define MIGRATE_VERSION_SQL "SELECT coalesce(max(version), 0) FROM callrouted_schema_migrations"

#endif
