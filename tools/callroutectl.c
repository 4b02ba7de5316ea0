/* callroutectl.c: the command-line client: usage read-outs from the ledger (more to come). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config.h"
#include "log.h"
#include "rating.h"

struct ctl_cmd {
	const char *name;
	const char *usage;
	int (*run)(int argc, char **argv);
};

static const char *ctl_config = "/etc/callrouted/callrouted.conf";
static const char *ctl_database;

/* The database: --database, else the daemon's configuration file's database_url. */
static PGconn *
ctl_connect(void)
{
	struct config *cfg = NULL;
	const char *conninfo = ctl_database;
	PGconn *conn;

	if (!conninfo) {
		cfg = config_load(ctl_config);
		if (!cfg)
			return NULL;
		conninfo = cfg->database_url;
	}
	conn = PQconnectdb(conninfo);
	config_free(cfg);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "callroutectl: could not connect to the database: %s",
			PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* YYYY-MM-DD only: periods are whole UTC days, --to inclusive. */
static bool
ctl_valid_date(const char *s)
{
	int y, m, d;
	char tail;

	return s && strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 &&
	       y >= 1970 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static const struct {
	const char *by;
	const char *key;   /* SQL expression of the group key */
	const char *label; /* SQL expression of its label */
	const char *join;
} ctl_groups[] = {
	{ "agency", "l.agency_id::text", "ag.name",
	  "LEFT JOIN agencies ag ON ag.id = l.agency_id" },
	{ "client", "coalesce(l.client_id::text, '-')", "coalesce(c.name, '(no client)')",
	  "LEFT JOIN clients c ON c.id = l.client_id" },
	{ "agent", "coalesce(l.agent_id::text, '-')", "coalesce(a.name, '(no agent)')",
	  "LEFT JOIN agents a ON a.id = l.agent_id" },
	{ "number", "coalesce(l.number_id::text, '-')", "coalesce(n.e164, '(unknown)')",
	  "LEFT JOIN phone_numbers n ON n.id = l.number_id" },
	{ "day", "to_char(l.ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
	  "to_char(l.ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "" },
};

static int
ctl_usage_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agency", required_argument, NULL, 'a' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "by", required_argument, NULL, 'b' },
		{ "format", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	const char *agency = NULL, *from = NULL, *to = NULL, *by = "agency", *format = "table";
	const char *params[3];
	char sql[2048];
	int c, g = -1, rc = 1;
	PGconn *conn;
	PGresult *r;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': agency = optarg; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'b': by = optarg; break;
		case 'F': format = optarg; break;
		default: return 2;
		}
	}
	if (!agency || strtoll(agency, &end, 10) <= 0 || *end) {
		fprintf(stderr, "callroutectl usage: --agency ID (a positive number) is required\n");
		return 2;
	}
	if ((from && !ctl_valid_date(from)) || (to && !ctl_valid_date(to))) {
		fprintf(stderr, "callroutectl usage: --from and --to take dates as YYYY-MM-DD (UTC)\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(ctl_groups) / sizeof(ctl_groups[0]); i++)
		if (strcmp(by, ctl_groups[i].by) == 0)
			g = (int)i;
	if (g < 0) {
		fprintf(stderr, "callroutectl usage: --by takes agency, client, agent, number or day\n");
		return 2;
	}
	if (strcmp(format, "table") != 0 && strcmp(format, "csv") != 0 &&
	    strcmp(format, "json") != 0) {
		fprintf(stderr, "callroutectl usage: --format takes table, csv or json\n");
		return 2;
	}
	snprintf(sql, sizeof(sql),
		"SELECT %s AS key, %s AS label, count(*), sum(l.duration_ms)::bigint, "
		"sum(l.billed_seconds)::bigint, sum(l.amount_micros)::bigint "
		"FROM usage_ledger l %s WHERE l.agency_id = $1 "
		"AND ($2::date IS NULL OR l.ended_at >= ($2::date)::timestamp AT TIME ZONE 'UTC') "
		"AND ($3::date IS NULL OR l.ended_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC') "
		"GROUP BY 1, 2 ORDER BY 1",
		ctl_groups[g].key, ctl_groups[g].label, ctl_groups[g].join);
	params[0] = agency;
	params[1] = from;
	params[2] = to;
	conn = ctl_connect();
	if (!conn)
		return 1;
	r = PQexecParams(conn, sql, 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "callroutectl: %s", PQresultErrorMessage(r));
		goto done;
	}
	{
		json_t *arr = json_array();
		int64_t tcalls = 0, tbilled = 0, tamount = 0;
		char dollars[RATING_DOLLARS_BUFSIZE], minutes[32];

		if (strcmp(format, "table") == 0)
			printf("%-24s %-28s %8s %12s %16s\n", by, "name", "calls", "minutes",
				"amount_usd");
		else if (strcmp(format, "csv") == 0)
			printf("%s,name,calls,billed_seconds,minutes,amount_micros,amount_usd\n", by);
		for (int i = 0; i < PQntuples(r); i++) {
			int64_t calls = strtoll(PQgetvalue(r, i, 2), NULL, 10);
			int64_t billed = strtoll(PQgetvalue(r, i, 4), NULL, 10);
			int64_t amount = strtoll(PQgetvalue(r, i, 5), NULL, 10);
			const char *key = PQgetvalue(r, i, 0), *label = PQgetvalue(r, i, 1);

			tcalls += calls;
			tbilled += billed;
			tamount += amount;
			rating_format_dollars(amount, dollars, sizeof(dollars));
			/* billed minutes, exact to the second: "12.5" reads worse than "12:30" */
			snprintf(minutes, sizeof(minutes), "%lld:%02lld", (long long)(billed / 60),
				(long long)(billed % 60));
			if (strcmp(format, "table") == 0) {
				printf("%-24s %-28.28s %8lld %12s %16s\n", key, label, (long long)calls,
					minutes, dollars);
			} else if (strcmp(format, "csv") == 0) {
				printf("%s,\"", key);
				for (const char *p = label; *p; p++)
					printf(*p == '"' ? "\"\"" : "%c", *p);
				printf("\",%lld,%lld,%s,%lld,%s\n", (long long)calls, (long long)billed,
					minutes, (long long)amount, dollars);
			} else {
				json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:I,s:s}", by, key,
					"name", label, "calls", (json_int_t)calls, "billed_seconds",
					(json_int_t)billed, "amount_micros", (json_int_t)amount,
					"amount_usd", dollars));
			}
		}
		rating_format_dollars(tamount, dollars, sizeof(dollars));
		snprintf(minutes, sizeof(minutes), "%lld:%02lld", (long long)(tbilled / 60),
			(long long)(tbilled % 60));
		if (strcmp(format, "table") == 0) {
			printf("%-24s %-28s %8lld %12s %16s\n", "total", "", (long long)tcalls,
				minutes, dollars);
		} else if (strcmp(format, "json") == 0) {
			json_t *o = json_pack("{s:s,s:o,s:{s:I,s:I,s:I,s:s}}", "by", by, "rows", arr,
				"total", "calls", (json_int_t)tcalls, "billed_seconds",
				(json_int_t)tbilled, "amount_micros", (json_int_t)tamount,
				"amount_usd", dollars);

			arr = NULL;
			json_dumpf(o, stdout, JSON_INDENT(2));
			printf("\n");
			json_decref(o);
		}
		json_decref(arr);
	}
	rc = 0;
done:
	PQclear(r);
	PQfinish(conn);
	return rc;
}

static const struct ctl_cmd ctl_cmds[] = {
	{ "usage",
	  "usage --agency ID [--from YYYY-MM-DD] [--to YYYY-MM-DD]\n"
	  "        [--by agency|client|agent|number|day] [--format table|csv|json]\n"
	  "        totals of the usage ledger (UTC days, --to inclusive)",
	  ctl_usage_cmd },
};

static void
ctl_help(FILE *f)
{
	fprintf(f, "usage: callroutectl [-c FILE | --database CONNINFO] COMMAND [ARGS]\n\n"
		   "  -c, --config FILE       the daemon's configuration (default %s)\n"
		   "      --database CONNINFO read this database instead\n\ncommands:\n",
		ctl_config);
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		fprintf(f, "  %s\n", ctl_cmds[i].usage);
}

int
main(int argc, char **argv)
{
	int i = 1;

	log_setup();
	while (i < argc && argv[i][0] == '-') {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			ctl_config = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--database") == 0 && i + 1 < argc) {
			ctl_database = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			ctl_help(stdout);
			return 0;
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			printf("callroutectl %s\n", CALLROUTED_VERSION);
			return 0;
		} else {
			ctl_help(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		ctl_help(stderr);
		return 2;
	}
	for (size_t k = 0; k < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); k++)
		if (strcmp(argv[i], ctl_cmds[k].name) == 0)
			return ctl_cmds[k].run(argc - i, argv + i);
	fprintf(stderr, "callroutectl: unknown command \"%s\"\n", argv[i]);
	ctl_help(stderr);
	return 2;
}
