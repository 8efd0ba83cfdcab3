-- post.lua -- wrk script: POST the file named by $WRK_BODY as JSON, and
-- print one machine-readable line that bench/run.sh parses.
local path = os.getenv("WRK_BODY")
local f = assert(io.open(path, "rb"), "cannot open WRK_BODY=" .. tostring(path))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRKRESULT requests=%d secs=%.3f rps=%.1f p50_us=%d p99_us=%d " ..
    "max_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency.max,
    summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
