-- wrk script for make soak (tests/soak/soak.sh).  Run with as many connections as
-- threads (-t N -c N): each thread then has one connection, so request() and
-- response() strictly alternate and every response belongs to the request sent
-- just before it.  A request() while one is still pending means the connection
-- failed and wrk reconnected: that request is counted as lost.
--
-- SOAK_MANIFEST: the manifest.lua written by soak.py prepare (each request with its
-- method, path, content type, body, weight, and the status and exact body it got
-- once before the run).  SOAK_RESULT: where done() writes the numbers.

local entries = dofile(os.getenv("SOAK_MANIFEST"))
local schedule = {}
for i, e in ipairs(entries) do
  for _ = 1, e.weight do schedule[#schedule + 1] = i end
end

-- ---- main state: one record per thread, collected in done()
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

-- ---- thread state
function init(args)
  reqs = {}
  for i, e in ipairs(entries) do
    local h = {}
    if e.ctype then h["Content-Type"] = e.ctype end
    reqs[i] = wrk.format(e.method, e.path, h, e.body)
  end
  -- a different starting point and stride per thread, so the mix interleaves
  pos = ((tid or 1) * 5) % #schedule
  pending = nil
  sent, ok, bad, lost = 0, 0, 0, 0
  by_status = {}
  entry_sent, entry_ok = {}, {}
  issues = {}
  -- wrk calls request() once in the first thread's state, before the run, to
  -- check that it is valid HTTP; that call is not a request sent
  verify_call = (tid == 1)
end

local function issue(text)
  if #issues < 5 then issues[#issues + 1] = text end
end

function request()
  if verify_call then
    verify_call = false
    return reqs[schedule[1]]
  end
  if pending then
    lost = lost + 1
    issue("no response to " .. entries[pending].name .. " (connection failed)")
  end
  pos = pos % #schedule + 1
  pending = schedule[pos]
  sent = sent + 1
  entry_sent[pending] = (entry_sent[pending] or 0) + 1
  return reqs[pending]
end

function response(status, headers, body)
  local i = pending
  pending = nil
  by_status[status] = (by_status[status] or 0) + 1
  if not i then
    bad = bad + 1
    issue("a response (" .. status .. ") with no request pending")
    return
  end
  local e = entries[i]
  if status == e.status and body == e.expect then
    ok = ok + 1
    entry_ok[i] = (entry_ok[i] or 0) + 1
  else
    bad = bad + 1
    issue(string.format("%s: got %d (%d bytes) %q, expected %d (%d bytes)", e.name, status,
                        body and #body or -1, string.sub(body or "", 1, 120), e.status, #e.expect))
  end
end

function done(summary, latency, requests)
  local f = assert(io.open(os.getenv("SOAK_RESULT"), "w"))
  local t_sent, t_ok, t_bad, t_lost = 0, 0, 0, 0
  local statuses, es, eo = {}, {}, {}
  for _, t in ipairs(threads) do
    t_sent = t_sent + (t:get("sent") or 0)
    t_ok = t_ok + (t:get("ok") or 0)
    t_bad = t_bad + (t:get("bad") or 0)
    t_lost = t_lost + (t:get("lost") or 0)
    -- (a request still pending when wrk stops is not lost: the run simply ended)
    for s, n in pairs(t:get("by_status") or {}) do statuses[s] = (statuses[s] or 0) + n end
    for i, n in pairs(t:get("entry_sent") or {}) do es[i] = (es[i] or 0) + n end
    for i, n in pairs(t:get("entry_ok") or {}) do eo[i] = (eo[i] or 0) + n end
    for _, text in ipairs(t:get("issues") or {}) do f:write("issue ", text, "\n") end
  end
  f:write("requests ", summary.requests, "\n")
  f:write("duration_us ", summary.duration, "\n")
  f:write("errors_connect ", summary.errors.connect, "\n")
  f:write("errors_read ", summary.errors.read, "\n")
  f:write("errors_write ", summary.errors.write, "\n")
  f:write("errors_timeout ", summary.errors.timeout, "\n")
  f:write("errors_status ", summary.errors.status, "\n")
  f:write("sent ", t_sent, "\n")
  f:write("ok ", t_ok, "\n")
  f:write("bad ", t_bad, "\n")
  f:write("lost ", t_lost, "\n")
  for s, n in pairs(statuses) do f:write("status ", s, " ", n, "\n") end
  for i, e in ipairs(entries) do
    f:write("entry ", e.name, " ", es[i] or 0, " ", eo[i] or 0, "\n")
  end
  f:write("latency_p50_us ", latency:percentile(50), "\n")
  f:write("latency_p99_us ", latency:percentile(99), "\n")
  f:write("latency_max_us ", latency.max, "\n")
  f:close()
end
