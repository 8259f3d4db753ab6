-- One half of a simulated HLS audience, for wrk (Debian package `wrk`, LuaJIT).
--
-- A live HLS client (RFC 8216, section 6.3.4) reloads the media playlist about once per
-- target duration and downloads each segment newly listed. wrk keeps one Lua state per
-- thread, not per connection, and request() cannot tell which connection it serves, so one
-- wrk process cannot give each connection a player's memory. bench/live.py therefore runs
-- the audience as two wrk processes side by side, each with one connection per viewer:
--
--   role "playlist": each connection fetches the master playlist once on joining, then the
--     media playlist every PERIOD ms (+-10 %). The thread parses the answers and, whenever a
--     newer segment is listed, writes the init segment and the listed segments to STATE
--     (a temporary file renamed over it, so a reader never sees half of it).
--   role "segment": each connection fetches the init segment once on joining, then a media
--     segment every PERIOD ms (+-10 %). The thread reads STATE at most every 100 ms and
--     hands out every segment listed since the start, oldest first, N times (once per
--     viewer) before the next; when more than two segments per viewer are owed (answers
--     were slow), the think time shrinks in proportion, as players behind the live edge
--     fetch the next listed segment at once. The audience thus learns of segments through
--     the server it measures (through the cache's one-second-old playlist behind nginx),
--     and this process's latency distribution is the audience's segment fetch time. Which
--     connection fetches which segment is left to chance, where each player would fetch
--     each one itself; the counts and the timing are the audience's.
--
-- wrk calls delay() before every request, the first included: joins are spread uniformly
-- over the first PERIOD ms instead of arriving as one burst. No request is sent after
-- SECONDS: a connection whose next request would fall later goes idle instead (delay() then
-- answers a day), right after an answer. wrk, run for SECONDS plus a grace of at least its
-- --timeout, thus stops with only the connections whose last request was never answered
-- still busy ("unanswered").
--
-- done() prints one line, "hls-audience " followed by JSON: wrk's counts and socket errors
-- (a "timeout" is an answer slower than --timeout; "status" counts answers >= 400), the
-- requests sent, idle and unanswered connections, latency percentiles in microseconds, and
-- per role the playlist answers by status or the segment fetches. The percentiles are
-- over the answers within --timeout, with wrk's coordinated-omission correction (extra
-- samples for answers slower than twice a connection's mean request interval, some 2 s
-- here), which only thickens a tail already past a 1 s target.
--
-- Usage (one thread, so STATE has a single writer):
--   wrk -t 1 -c N -d SECONDS+GRACE --timeout 3s -s bench/hls_audience.lua URL -- \
--       ROLE PREFIX RENDITION STATE SECONDS PERIOD_MS N
-- PREFIX is the session's signed HLS path ending in "/" (".../hls/{expires}/{sig}/").

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } hls_audience_timespec;
  int clock_gettime(int clock_id, hls_audience_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("hls_audience_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local STATE_READ_MS = 100
local IDLE_MS = 24 * 3600 * 1000

-- Globals below are read by done() through thread:get().
role = nil
connections = 0
sent = 0 -- requests written (wrk's own check of the request before the run excluded)
idle = 0 -- connections that stopped asking before SECONDS, their last answer received
statuses = {} -- playlist role: answers by HTTP status
first_listed = nil -- playlist role: media sequence number of the first newest segment seen
last_listed = nil -- ... and of the last
fetched = 0 -- segment role: media segment requests
distinct = 0 -- segment role: distinct media segments requested
missed = 0 -- segment role: fetches not made for segments gone from the playlist meanwhile
refetched = 0 -- segment role: requests made with every listed segment fetched N times
backlog = 0 -- segment role: fetches owed for listed segments (N per segment)

local prefix, rendition_dir, state_path, window_ms, period
local started
local delays = 0
local join_request, media_request
local state_read_at, state_text = -math.huge, nil
local newest_request
-- Segment role: segments listed since the start, oldest first, each until fetched N times.
local queue, head, tail, known = {}, 1, 0, {}

function init(args)
  role, prefix, state_path = args[1], args[2], args[4]
  rendition_dir = prefix .. args[3] .. "/"
  window_ms = tonumber(args[5]) * 1000
  period = tonumber(args[6])
  connections = tonumber(args[7])
  if role ~= "playlist" and role ~= "segment" then
    error("role must be playlist or segment, not " .. tostring(role))
  end
  math.randomseed(os.time() + (role == "playlist" and 0 or 7919))
  if role == "playlist" then
    join_request = wrk.format("GET", prefix .. "master.m3u8")
    media_request = wrk.format("GET", rendition_dir .. "index.m3u8")
  else
    response = nil -- segment bodies are not handed to Lua: wrk skips copying them
  end
  started = now_ms()
end

function delay()
  delays = delays + 1
  local wait
  if delays <= connections then
    wait = math.random() * period -- joining
  else
    wait = period * (0.9 + 0.2 * math.random())
    if backlog > 2 * connections then
      -- More than two segments per viewer owed: answers were slow and the viewers fell
      -- behind; players then fetch the next listed segment at once, so they catch up.
      -- (Two are owed in the normal course behind a cache whose playlist moves by two.)
      wait = wait * 2 * connections / backlog
    end
  end
  if now_ms() + wait - started >= window_ms then
    -- Called right after an answer (or before the first request): nothing is outstanding.
    idle = idle + 1
    return IDLE_MS
  end
  return wait
end

local function enqueue(name)
  known[name] = true
  tail = tail + 1
  queue[tail] = { name = name, request = wrk.format("GET", rendition_dir .. name), count = 0 }
  backlog = backlog + connections
end

local function read_state()
  local now = now_ms()
  if now - state_read_at < STATE_READ_MS then
    return
  end
  state_read_at = now
  local file = io.open(state_path, "r")
  if file == nil then
    return
  end
  local text = file:read("*a")
  file:close()
  if text == state_text then
    return
  end
  local first_read = state_text == nil
  state_text = text
  -- First line: the init segment (empty if none); then the listed segments, oldest first.
  local init_name, listed = nil, {}
  for line in text:gmatch("([^\n]*)\n") do
    if init_name == nil then
      init_name = line
    elseif line ~= "" then
      listed[#listed + 1] = line
    end
  end
  if init_name ~= nil and init_name ~= "" then
    join_request = wrk.format("GET", rendition_dir .. init_name)
  end
  if #listed == 0 then
    return
  end
  newest_request = wrk.format("GET", rendition_dir .. listed[#listed])
  if first_read then
    -- A joining player starts at the newest segment; those after it are fetched in order.
    for index = 1, #listed - 1 do
      known[listed[index]] = true
    end
  end
  for _, name in ipairs(listed) do
    if not known[name] then
      enqueue(name)
    end
  end
  local still = {}
  for _, name in ipairs(listed) do
    still[name] = true
  end
  while head <= tail and not still[queue[head].name] do
    local owed = connections - queue[head].count
    missed, backlog = missed + owed, backlog - owed
    queue[head], head = nil, head + 1
  end
end

function request()
  if role == "segment" then
    read_state()
  end
  if delays == 0 then
    -- wrk calls request() once before the run to check it; that one is never sent.
    return join_request or wrk.format("GET", prefix .. "master.m3u8")
  end
  sent = sent + 1
  if sent <= connections then
    return join_request -- one per connection, as each joins (retries after errors aside)
  end
  if role == "playlist" then
    return media_request
  end
  fetched = fetched + 1
  local entry = queue[head]
  if entry == nil then
    refetched = refetched + 1
    return newest_request
  end
  entry.count, backlog = entry.count + 1, backlog - 1
  if entry.count == 1 then
    distinct = distinct + 1
  end
  if entry.count >= connections then
    queue[head], head = nil, head + 1
  end
  return entry.request
end

local written = -1

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 then
    return
  end
  local sequence = body:match("#EXT%-X%-MEDIA%-SEQUENCE:(%d+)")
  if sequence == nil then
    return -- the master playlist
  end
  local segments = {}
  for line in body:gmatch("[^\r\n]+") do
    if line:sub(1, 1) ~= "#" then
      segments[#segments + 1] = line
    end
  end
  local newest = tonumber(sequence) + #segments - 1
  if #segments == 0 or newest <= written then
    return
  end
  written = newest
  first_listed = first_listed or newest
  last_listed = newest
  local init_name = body:match('#EXT%-X%-MAP:URI="([^"]+)"') or ""
  local temporary = state_path .. ".tmp"
  local file = assert(io.open(temporary, "w"))
  file:write(init_name, "\n", table.concat(segments, "\n"), "\n")
  file:close()
  assert(os.rename(temporary, state_path))
end

-- setup() and done() run in wrk's main Lua state, apart from the threads'.
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local function json(value)
  local kind = type(value)
  if kind == "table" then
    local parts = {}
    for key, item in pairs(value) do
      parts[#parts + 1] = string.format("%q:%s", tostring(key), json(item))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then
      return "null"
    end
    return string.format("%.17g", value)
  elseif kind == "string" then
    return string.format("%q", value)
  end
  return "null"
end

function done(summary, latency, requests)
  local out = {
    role = threads[1]:get("role"),
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = summary.errors,
    connections = 0,
    sent = 0,
    idle = 0,
    fetched = 0,
    distinct = 0,
    missed = 0,
    refetched = 0,
    statuses = {},
  }
  for _, thread in ipairs(threads) do
    local counts = { "connections", "sent", "idle", "fetched", "distinct", "missed", "refetched" }
    for _, name in ipairs(counts) do
      out[name] = out[name] + thread:get(name)
    end
    for status, count in pairs(thread:get("statuses")) do
      out.statuses[tostring(status)] = (out.statuses[tostring(status)] or 0) + count
    end
    out.backlog = (out.backlog or 0) + thread:get("backlog")
    out.first_listed = thread:get("first_listed")
    out.last_listed = thread:get("last_listed")
  end
  out.unanswered = math.max(0, out.connections - out.idle)
  if summary.requests > 0 then
    out.latency_us = {
      p50 = latency:percentile(50),
      p90 = latency:percentile(90),
      p99 = latency:percentile(99),
      p999 = latency:percentile(99.9),
      max = latency.max,
      mean = latency.mean,
    }
  end
  io.write("hls-audience ", json(out), "\n")
end
