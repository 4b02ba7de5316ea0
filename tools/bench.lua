-- tools/bench.lua: wrk script of tools/bench: cycles through pre-built, pre-signed requests.
--
-- BENCH_REQUESTS names a file of raw HTTP/1.1 requests, each as "<byte length>\n<bytes>"
-- (tools/bench writes it right before the run: Retell signatures are valid for 5 minutes).
-- Each wrk thread starts at a different place in the list.  done() prints one line
-- "BENCH-JSON {...}" with the figures tools/bench reads.

local requests = {}
local nth = 1
local threads = 0

function setup(thread)
	thread:set("thread_no", threads)
	threads = threads + 1
end

function init(args)
	local path = os.getenv("BENCH_REQUESTS")
	assert(path, "BENCH_REQUESTS is not set")
	local f = assert(io.open(path, "rb"))
	local data = f:read("*a")
	f:close()
	local pos = 1
	while pos <= #data do
		local nl = data:find("\n", pos, true)
		if not nl then break end
		local len = tonumber(data:sub(pos, nl - 1))
		assert(len, "bad request file " .. path)
		requests[#requests + 1] = data:sub(nl + 1, nl + len)
		pos = nl + len + 1
	end
	assert(#requests > 0, "no requests in " .. path)
	nth = ((thread_no or 0) * 7919) % #requests + 1
end

function request()
	local r = requests[nth]
	nth = nth + 1
	if nth > #requests then
		nth = 1
	end
	return r
end

function done(summary, latency, requests_)
	local e = summary.errors
	io.write(string.format(
		'BENCH-JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
		'"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
		'"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p99.9":%d,"max":%d,"mean":%.1f}}\n',
		summary.requests, summary.duration, summary.bytes,
		e.connect, e.read, e.write, e.status, e.timeout,
		latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency:percentile(99.9), latency.max, latency.mean))
end
