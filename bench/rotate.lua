-- wrk script for bench/api.py: rotate over pre-built requests, report figures as JSON.
--
--   wrk -t1 -c32 -d10s -s bench/rotate.lua http://127.0.0.1:PORT -- REQUESTS_FILE
--
-- REQUESTS_FILE has one request per line: "<path>\t<bearer token>" (the token may be
-- empty). Each wrk thread starts at its own offset so threads hit different paths.

local prepared = {}
local position = 0
local next_thread_id = 0

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
end

function init(args)
  local file = args[1]
  if file == nil then
    error("usage: wrk ... -s rotate.lua URL -- REQUESTS_FILE")
  end
  for line in io.lines(file) do
    local path, token = line:match("^([^\t]+)\t?(.*)$")
    if path ~= nil then
      local headers = {}
      if token ~= nil and token ~= "" then
        headers["Authorization"] = "Bearer " .. token
      end
      prepared[#prepared + 1] = wrk.format("GET", path, headers)
    end
  end
  if #prepared == 0 then
    error("no requests in " .. file)
  end
  position = ((thread_id or 0) * 7919) % #prepared
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_s": %.6f, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_ms": {"mean": %.3f, "p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f}}\n',
    summary.requests, summary.duration / 1e6, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean / 1e3, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3
  ))
end
