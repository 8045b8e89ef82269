-- customerio-async shared gate: a workspace's pause and one bucket's turns, in one call.
-- Atomic, and timed with the server's clock only (TIME), so the callers' clocks never
-- matter. Turns are GCRA: a bucket is one number, its theoretical arrival time (TAT); a
-- turn is as early as the burst allows and moves TAT one emission interval on.
--
-- KEYS[1] pause key: "<until us> <reason>", expiring with the pause
-- KEYS[2] bucket key (op "acquire" only): TAT, us
-- ARGV[1] op: "acquire" (read the pause; unless paused, book a turn),
--             "check" (read the pause) or "pause" (extend the pause; never shortens it)
-- acquire: ARGV[2] emission interval us (1e6 / rate), ARGV[3] burst,
--          ARGV[4] not-before us (the turn may not be sooner than this from now)
-- pause:   ARGV[2] pause length us, ARGV[3] reason
-- returns {pause us left (0: none), pause reason ('' if none), wait us for the turn,
--          server time us (callers map the turn onto their own clocks with it)}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local held = redis.call('GET', KEYS[1])
local pause_until, reason = 0, ''
if held then
  local cut = string.find(held, ' ', 1, true)
  if cut then
    pause_until = tonumber(string.sub(held, 1, cut - 1)) or 0
    reason = string.sub(held, cut + 1)
  end
end
local op = ARGV[1]
if op == 'pause' then
  local wanted = now + tonumber(ARGV[2])
  if wanted > pause_until and wanted > now then
    pause_until, reason = wanted, ARGV[3]
    redis.call('SET', KEYS[1], string.format('%.0f ', pause_until) .. reason,
               'PX', math.ceil((pause_until - now) / 1000))
  end
  return {math.max(pause_until - now, 0), reason, 0, now}
end
if pause_until > now then
  return {pause_until - now, reason, 0, now}
end
if op ~= 'acquire' then
  return {0, '', 0, now}
end
local interval = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if tat < now then
  tat = now
end
-- The turn: as early as the burst allows, but not before the caller says (a process that
-- just paced itself while Redis was away: its last own turns go first); the next turn
-- counts from the one given.
local turn = math.max(tat - (tonumber(ARGV[3]) - 1) * interval, now + tonumber(ARGV[4]))
tat = math.max(tat, turn) + interval
-- The key outlives the reservation by a millisecond: once TAT is past, the bucket is full.
redis.call('SET', KEYS[2], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return {0, '', math.floor(turn - now), now}
