-- SPDX-License-Identifier: MIT
-- wrk script of the benchmark: a fixed or rotating session cookie, a JSON summary per run.
--
-- Set by bench/bench.py through the environment:
--   BENCH_OUT          file that receives the JSON summary (required)
--   BENCH_HOST         Host header (else wrk's default: the URL's host)
--   BENCH_COOKIE_NAME  cookie name (default _pomerium)
--   BENCH_COOKIE       one cookie value for every request (static request: cheapest for wrk)
--   BENCH_COOKIE_FILE  one cookie value per line: each request takes the next one; thread i of
--                      BENCH_THREADS walks its own slice, so no two requests share a cookie
--                      until a slice is used up ("wraps" counts how often that happened)
--   BENCH_THREADS      wrk's -t, to cut the file into slices
--   BENCH_STRICT=1     count every answer by status (costs wrk a little; bench-smoke uses it)
--   BENCH_FILL=1       with BENCH_COOKIE_FILE: stop each thread once its whole slice was
--                      answered (plus a margin for requests still in flight), to fill a cache;
--                      the thread then leaves the file BENCH_OUT.done.<thread number>

local cookie_name = os.getenv("BENCH_COOKIE_NAME") or "_pomerium"
local cookie = os.getenv("BENCH_COOKIE")
local cookie_file = os.getenv("BENCH_COOKIE_FILE")
local host = os.getenv("BENCH_HOST")
local out = os.getenv("BENCH_OUT")
local num_threads = tonumber(os.getenv("BENCH_THREADS") or "1")
local strict = os.getenv("BENCH_STRICT") == "1"
local fill = os.getenv("BENCH_FILL") == "1"

if host ~= nil then
    wrk.headers["Host"] = host
end
if cookie ~= nil then
    wrk.headers["Cookie"] = cookie_name .. "=" .. cookie
end

-- main state: the threads, to collect their counters in done()
local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("tid", #threads)
end

-- thread state (globals, so that done() can read them with thread:get)
statuses = {}
wraps = 0
answered = 0

local slice = {}
local pos = 1
local headers = {}
local fill_target = 0

function init(args)
    if cookie_file == nil then
        return
    end
    local all = {}
    for line in io.lines(cookie_file) do
        if line ~= "" then
            all[#all + 1] = line
        end
    end
    local per = math.floor(#all / num_threads)
    local first = (tid - 1) * per + 1
    local last = tid * per
    if tid == num_threads then
        last = #all
    end
    for k, v in pairs(wrk.headers) do
        headers[k] = v
    end
    -- whole requests, formatted once here: per request, wrk then only takes the next string,
    -- which keeps the client's own CPU per request (it shares the machine) near a static one's
    for i = first, last do
        headers["Cookie"] = cookie_name .. "=" .. all[i]
        slice[#slice + 1] = wrk.format(nil, nil, headers)
    end
    if #slice == 0 then
        error("BENCH_COOKIE_FILE has fewer cookies than threads")
    end
    -- the answers of the first pass, plus what other connections may still have in flight
    fill_target = #slice + 2 * math.ceil(tonumber(os.getenv("BENCH_CONNECTIONS") or "64"))
end

if cookie_file ~= nil then
    function request()
        local req = slice[pos]
        pos = pos + 1
        if pos > #slice then
            pos = 1
            wraps = wraps + 1
        end
        return req
    end
end

if strict or fill then
    function response(status, hdrs, body)
        statuses[status] = (statuses[status] or 0) + 1
        answered = answered + 1
        if fill and answered == fill_target then
            -- wrk's main thread sleeps out -d whatever its threads do: bench.py interrupts it
            -- (SIGINT, which still reports) once every thread left this marker
            local marker = assert(io.open(out .. ".done." .. tid, "w"))
            marker:close()
            wrk.thread:stop()
        end
    end
end

local function json_number(v)
    return string.format("%d", math.floor(v + 0.5))
end

function done(summary, latency, requests)
    local counts = {}
    local total_wraps = 0
    for _, t in ipairs(threads) do
        local s = t:get("statuses")
        if s ~= nil then
            for k, v in pairs(s) do
                counts[k] = (counts[k] or 0) + v
            end
        end
        total_wraps = total_wraps + (t:get("wraps") or 0)
    end

    local parts = {}
    for k, v in pairs(counts) do
        parts[#parts + 1] = string.format('"%d": %d', k, v)
    end
    local e = summary.errors
    local text = string.format(
        '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
        '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
        '"latency_us": {"p50": %s, "p90": %s, "p99": %s, "max": %s, "mean": %s}, ' ..
        '"statuses": {%s}, "strict": %s, "wraps": %d}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        json_number(latency:percentile(50)), json_number(latency:percentile(90)),
        json_number(latency:percentile(99)), json_number(latency.max), json_number(latency.mean),
        table.concat(parts, ", "), tostring(strict), total_wraps)
    local f = assert(io.open(out, "w"))
    f:write(text)
    f:close()
end
