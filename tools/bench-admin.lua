-- tools/bench-admin.lua: wrk script of the admin API's reads (GET /v1/numbers, GET /v1/route).
--
--   wrk -t2 -c16 -d10s -s tools/bench-admin.lua http://127.0.0.1:ADMIN_PORT -- \
--       TOKEN MODE [NUMBERS_FILE] [MAX_ID]
--
-- TOKEN: an agency token (callroutectl tokens create --agency ID).  MODE:
--   first   GET /v1/numbers?limit=50                        (the first page)
--   deep    GET /v1/numbers?limit=50&after=<random id>      (a page anywhere, keyset cursor;
--                                                            ids 1..MAX_ID, default 1000000)
--   e164    GET /v1/numbers?limit=50&e164=%2B<prefix>       (a prefix search: the first 9
--                                                            characters of a random number)
--   digits  GET /v1/numbers?limit=50&e164=<digits>          (a part: 5 digits of a number)
--   route   GET /v1/route?to=<random number>&from=<random caller>   (explain)
--   mix     the five above in turn
-- NUMBERS_FILE: E.164 numbers of the token's agency, one a line (for e164, digits, route):
--   SELECT e164 FROM phone_numbers WHERE agency_id = ID AND status = 'active'
--   ORDER BY random() LIMIT 2000
-- done() prints "BENCH-JSON {...}" (as tools/bench.lua) plus the count of non-200 answers.

local token, max_id = nil, 1000000
mode = "first" -- a global: done() reads it from the threads
local numbers = {}
local modes = { "first", "deep", "e164", "digits", "route" }
local nth = 0
local non200 = 0
local threads = {}

function setup(thread)
	thread:set("thread_no", #threads)
	table.insert(threads, thread)
end

function init(args)
	token = assert(args[1], "usage: -- TOKEN MODE [NUMBERS_FILE] [MAX_ID]")
	mode = args[2] or "first"
	if args[3] and args[3] ~= "" then
		for line in io.lines(args[3]) do
			if line:match("^%+%d+$") then
				numbers[#numbers + 1] = line
			end
		end
	end
	max_id = tonumber(args[4] or "") or max_id
	math.randomseed(os.time() + (thread_no or 0) * 7919)
	if mode ~= "first" and mode ~= "deep" then
		assert(#numbers > 0, "mode " .. mode .. " needs a NUMBERS_FILE")
	end
	wrk.headers["Authorization"] = "Bearer " .. token
end

local function pick()
	return numbers[math.random(#numbers)]
end

local function path(m)
	if m == "first" then
		return "/v1/numbers?limit=50"
	elseif m == "deep" then
		return "/v1/numbers?limit=50&after=" .. math.random(max_id)
	elseif m == "e164" then
		return "/v1/numbers?limit=50&e164=%2B" .. pick():sub(2, 9)
	elseif m == "digits" then
		local n = pick()
		local at = math.random(2, #n - 4)
		return "/v1/numbers?limit=50&e164=" .. n:sub(at, at + 4)
	elseif m == "route" then
		return "/v1/route?to=%2B" .. pick():sub(2) .. "&from=%2B1415" ..
			string.format("%07d", math.random(0, 9999999))
	end
	error("unknown mode " .. tostring(m))
end

function request()
	local m = mode
	if m == "mix" then
		nth = nth % #modes + 1
		m = modes[nth]
	end
	return wrk.format("GET", path(m))
end

function response(status, headers, body)
	if status ~= 200 then
		non200 = non200 + 1
		if non200 <= 3 then
			io.stderr:write("bench-admin: " .. status .. " " .. body:sub(1, 200) .. "\n")
		end
	end
end

function done(summary, latency, requests_)
	local e = summary.errors
	local bad, m = 0, threads[1] and threads[1]:get("mode") or mode
	for _, t in ipairs(threads) do
		bad = bad + (t:get("non200") or 0)
	end
	io.write(string.format(
		'BENCH-JSON {"mode":"%s","requests":%d,"duration_us":%d,"bytes":%d,"non200":%d,' ..
		'"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
		'"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p99.9":%d,"max":%d,"mean":%.1f}}\n',
		m, summary.requests, summary.duration, summary.bytes, bad,
		e.connect, e.read, e.write, e.status, e.timeout,
		latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency:percentile(99.9), latency.max, latency.mean))
end
