// tools/bench-node/server.js: the Node peer of tools/bench (Retell look-up + signature check).
//
// A small Fastify service doing what callrouted does for one signed Retell call_inbound, so that
// tools/bench can put the two side by side under the same wrk load in the same run:
//   POST /v1/webhooks/retell/:slug  -> verify x-retell-signature ("v=<ms>,d=<hex>": hex
//   HMAC-SHA256(api_key, body || decimal ms), within 5 minutes; the scheme of
//   daemon/common/signature.c and tools/send-webhook), parse the JSON, look call_inbound.to_number
//   up in a Map of the account's numbers, answer {"call_inbound":{"override_agent_id":...}}.
//
// usage: node server.js PORT NUMBERS_FILE [WORKERS]
//   NUMBERS_FILE (written by tools/bench from PostgreSQL), tab-separated lines:
//     A <slug> <api_key>                 one per Retell account
//     N <e164> <slug> <agent_id|-> <id>  one per active Retell number
//   WORKERS: processes (node:cluster, default: one per CPU), each holding the whole table, as
//   callrouted's workers and nginx's do.
// Prints "ready <port>" on stdout once every worker listens.
'use strict';

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');

const port = parseInt(process.argv[2], 10);
const numbersFile = process.argv[3];
const workers = parseInt(process.argv[4] || String(os.availableParallelism()), 10);
const TOLERANCE_MS = 5 * 60 * 1000;

if (!(port > 0) || !numbersFile || !(workers > 0)) {
	console.error('usage: node server.js PORT NUMBERS_FILE [WORKERS]');
	process.exit(2);
}

if (cluster.isPrimary) {
	let up = 0;
	for (let i = 0; i < workers; i++) {
		cluster.fork().on('message', (m) => {
			if (m === 'listening' && ++up === workers)
				console.log('ready ' + port);
		});
	}
	cluster.on('exit', (w, code) => {
		console.error('worker ' + w.process.pid + ' exited (' + code + ')');
		process.exit(1);
	});
	const stop = () => {
		for (const id in cluster.workers)
			cluster.workers[id].kill('SIGTERM');
		process.exit(0);
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
} else {
	const accounts = new Map(); // slug -> api_key
	const numbers = new Map(); // e164 -> {slug, agent, id}
	for (const line of fs.readFileSync(numbersFile, 'utf8').split('\n')) {
		const f = line.split('\t');
		if (f[0] === 'A' && f.length >= 3)
			accounts.set(f[1], f[2]);
		else if (f[0] === 'N' && f.length >= 5)
			numbers.set(f[1], { slug: f[2], agent: f[3] === '-' ? null : f[3], id: Number(f[4]) });
	}

	const fastify = require('fastify')({ logger: false, bodyLimit: 1048576 });
	// the signature is over the raw body: keep it as a Buffer, parse after the check
	fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) =>
		done(null, body));

	const fail = (reply, code, msg) => reply.code(code).send({ error: msg });

	fastify.post('/v1/webhooks/retell/:slug', (req, reply) => {
		const key = accounts.get(req.params.slug);
		if (key === undefined)
			return fail(reply, 404, 'unknown account');
		const raw = req.body;
		if (!Buffer.isBuffer(raw))
			return fail(reply, 400, 'a JSON body is required');
		const m = /^v=(\d{1,19}),d=([0-9a-fA-F]{64})$/.exec(req.headers['x-retell-signature'] || '');
		if (!m)
			return fail(reply, 401, 'missing or malformed x-retell-signature');
		if (Math.abs(Date.now() - Number(m[1])) > TOLERANCE_MS)
			return fail(reply, 401, 'stale signature');
		const mac = crypto.createHmac('sha256', key).update(raw).update(m[1]).digest();
		if (!crypto.timingSafeEqual(mac, Buffer.from(m[2], 'hex')))
			return fail(reply, 401, 'bad signature');
		let ev;
		try {
			ev = JSON.parse(raw);
		} catch (e) {
			return fail(reply, 400, 'not JSON');
		}
		if (!ev || ev.event !== 'call_inbound' || typeof ev.call_inbound !== 'object' ||
		    ev.call_inbound === null)
			return fail(reply, 400, 'missing call_inbound');
		const n = numbers.get(ev.call_inbound.to_number);
		if (n === undefined || n.slug !== req.params.slug)
			return fail(reply, 404, 'unknown number');
		if (n.agent === null)
			return reply.send({ call_inbound: {} });
		return reply.send({
			call_inbound: {
				override_agent_id: n.agent,
				dynamic_variables: {},
				metadata: { number_id: n.id, decision: 'assigned' },
			},
		});
	});

	fastify.listen({ port, host: '127.0.0.1', backlog: 4096 }, (err) => {
		if (err) {
			console.error(err.message);
			process.exit(1);
		}
		process.send('listening');
	});
}
