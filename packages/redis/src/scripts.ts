/**
 * Lua scripts: each one is a step that must be atomic on the server (park a delayed publish or a
 * retry and move it into the stream when due, release a closing consumer's entries, trim safely,
 * rewind a group, take a rate-limit slot). Scripts only touch keys of one topic, which share a
 * hash tag (see keys.ts), or one rate-limit key.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export class Script {
  readonly lua: string;
  readonly sha: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /**
   * EVAL with the script's text: one round trip whatever the server's script cache holds. For
   * the scripts of closing (giving deliveries back): a closing consumer may get only one chance
   * to be heard, and EVALSHA's NOSCRIPT answer would need a second one, after its deadline.
   */
  once(
    client: Redis,
    keys: readonly string[],
    args: readonly (string | number | Buffer)[],
  ): Promise<unknown> {
    return client.eval(this.lua, keys.length, ...keys, ...args);
  }

  /** EVALSHA, falling back to EVAL when the server lost its script cache (restart, SCRIPT FLUSH). */
  async run(
    client: Redis,
    keys: readonly string[],
    args: readonly (string | number | Buffer)[],
  ): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/** Server time in ms: delays are measured on one clock, whatever the clients' clocks say. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * A delayed publish: parks the entry's fields in the topic's scheduled set, scored by its due
 * time (epoch ms, the `ewdeliverat` header), until a mover (MOVE_DUE) appends them to the stream.
 * Due already on the server's clock: appended to the stream at once, like a plain publish. The
 * member packs an order key (publish order within one process, for ties of the due time) with
 * the fields, as MOVE_DUE expects. Returns the ms until it is due (0: appended now).
 *
 * KEYS: stream, scheduled set. ARGV: due ms, order key, field, value, ...
 */
export const SCHEDULE = new Script(`${NOW}
local due = tonumber(ARGV[1])
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
if due <= now then
  redis.call('XADD', KEYS[1], '*', unpack(fields))
  return 0
end
redis.call('ZADD', KEYS[2], due, cmsgpack.pack({ARGV[2], fields}))
return due - now`);

/**
 * Retry with a delay: acknowledge the delivery and park a copy in the group's delay set, scored
 * by its due time. The copy (fields prepared by the client: target group, next attempt) is
 * packed with the original id so that members are unique. Nothing is parked when the entry was
 * no longer pending (already settled elsewhere).
 *
 * KEYS: stream, delay set. ARGV: group, entry id, delay ms, field, value, ...
 */
export const RETRY = new Script(`${NOW}
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), cmsgpack.pack({ARGV[2], fields}))
return 1`);

/**
 * Dead letter: add the entry with its failure to the group's dead-letter stream, then
 * acknowledge it. A script rather than MULTI: in a transaction a failed XADD (a key of the wrong
 * type, out of memory) would not stop the XACK, and the event would be gone from both places;
 * here an error stops the script before it acknowledges.
 *
 * KEYS: stream, dead-letter stream. ARGV: group, entry id, failure JSON, headers JSON, body.
 */
export const DEAD_LETTER = new Script(`
redis.call('XADD', KEYS[2], '*', 'failure', ARGV[3], 'headers', ARGV[4], 'data', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1`);

/**
 * Moves due entries of a sorted set to the end of the stream and removes them from the set, in
 * one step: a crash cannot lose or double them, and of two movers running at once each entry is
 * moved by one. Used for a group's parked retries (new entries carrying their target group and
 * attempt) and for a topic's delayed publishes. Due time order; ties in member order (the order
 * key first). Returns { moved, ms until the next one is due or -1 }.
 *
 * KEYS: stream, delay set (or scheduled set). ARGV: max entries to move.
 */
export const MOVE_DUE = new Script(`${NOW}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local parked = cmsgpack.unpack(member)
  local args = {'XADD', KEYS[1], '*'}
  for _, v in ipairs(parked[2]) do args[#args + 1] = v end
  redis.call(unpack(args))
  redis.call('ZREM', KEYS[2], member)
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then wait = math.max(0, tonumber(nxt[2]) - now) end
return {#due, wait}`);

/**
 * Giving an entry back: it moves to the shared consumer "released" with its idle time set to the
 * lease, so the next XAUTOCLAIM of any live consumer of the group takes it at once, and with its
 * delivery count set back by one (`RETRYCOUNT`), so that the XAUTOCLAIM that takes it (which
 * counts one more delivery) leaves it at the count it had: the attempt the next consumer reports
 * is the one this consumer was given. A delivery given back was never handled to the end, so it
 * is not an attempt (DESIGN.md section 13). `JUSTID`: the XCLAIM itself counts nothing either.
 */
const GIVE_BACK = `local function giveBack(id, deliveries)
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, id, 'IDLE', ARGV[4],
    'RETRYCOUNT', math.max(0, deliveries - 1), 'JUSTID')
end`;

/**
 * A closing consumer gives back everything it still holds (see GIVE_BACK), then is deleted.
 *
 * KEYS: stream. ARGV: group, consumer, released consumer, idle ms.
 */
export const RELEASE = new Script(`${GIVE_BACK}
local released = 0
for _ = 1, 100 do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 500, ARGV[2])
  if #pending == 0 then break end
  for _, p in ipairs(pending) do giveBack(p[1], p[4]) end
  released = released + #pending
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return released`);

/**
 * A live consumer gives back some entries (`release()` of a delivery; see GIVE_BACK), but only
 * those it still owns: one already settled, or taken over by another consumer, is left alone.
 *
 * KEYS: stream. ARGV: group, consumer, released consumer, idle ms, id, ...
 */
export const RELEASE_ENTRIES = new Script(`${GIVE_BACK}
local released = 0
for i = 5, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then
    giveBack(ARGV[i], p[1][4])
    released = released + 1
  end
end
return released`);

/**
 * Keeps the lease of entries this consumer still holds: resets their idle time, but only for
 * entries it still owns (one taken over by another consumer is not taken back).
 *
 * KEYS: stream. ARGV: group, consumer, id, ...
 */
export const HEARTBEAT = new Script(`
local kept = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept`);

/**
 * Safe trim: removes only entries that every group of the stream has acknowledged, i.e. those
 * older than the oldest pending entry of each group, and than its last delivered entry, and
 * (with a retention) older than `retainMs` on the server's clock, so that a rewind can reach
 * them. A stream without groups is not trimmed. With a max length, entries beyond it are then
 * dropped even if unacknowledged or retained, and their number is returned so the caller can
 * say so. Returns { trimmed safely, dropped unacknowledged }.
 *
 * KEYS: stream. ARGV: max length (0 = none), retain ms (0 = none).
 */
export const TRIM = new Script(`${NOW}
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function older(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local safe = 0
if #groups > 0 then
  local min = nil
  for _, g in ipairs(groups) do
    local name, last
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    local candidate = last
    local summary = redis.call('XPENDING', KEYS[1], name)
    if summary[1] > 0 and older(summary[2], candidate) then candidate = summary[2] end
    if min == nil or older(candidate, min) then min = candidate end
  end
  local retain = tonumber(ARGV[2])
  if retain > 0 then
    local kept = string.format('%d-0', now - retain)
    if older(kept, min) then min = kept end
  end
  safe = redis.call('XTRIM', KEYS[1], 'MINID', '~', min)
end
local forced = 0
local maxLen = tonumber(ARGV[1])
if maxLen > 0 and redis.call('XLEN', KEYS[1]) > maxLen then
  forced = redis.call('XTRIM', KEYS[1], 'MAXLEN', maxLen)
end
return {safe, forced}`);

/**
 * Forgets consumers that crashed long ago: those with nothing pending (their entries were
 * claimed) and idle for longer than ARGV[2] ms. A live consumer re-issues its blocking read every
 * few seconds, so it is never that idle; and nothing pending means nothing can be lost.
 *
 * KEYS: stream. ARGV: group, min idle ms, consumer name to keep.
 */
export const FORGET_DEAD_CONSUMERS = new Script(`
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'pending' then pending = c[i + 1] elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if pending == 0 and idle > tonumber(ARGV[2]) and name ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed = removed + 1
  end
end
return removed`);

/** Field `name` of an XINFO reply (a flat name, value, ... list); false when absent or nil. */
const FIELD = `local function field(list, name)
  for i = 1, #list, 2 do if list[i] == name then return list[i + 1] end end
  return false
end`;

/**
 * What a rewind needs, read in one step: the group's position (last delivered id, its entries
 * read counter and whether Redis knows its lag), the id to move it to (the last entry before the
 * rewind time, `0-0` when there is none or for the beginning), the highest id ever deleted from
 * the middle of the stream (XDEL), and the most recently active consumer of the group other than
 * `released` (name, idle ms). Returns {0} when the stream or the group does not exist.
 *
 * KEYS: stream. ARGV: group, last id before the rewind time ('' = the beginning), released consumer.
 */
export const REWIND_PLAN = new Script(`${FIELD}
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local group = false
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if field(g, 'name') == ARGV[1] then group = g end
end
if not group then return {0} end
local target = '0-0'
if ARGV[2] ~= '' then
  local before = redis.call('XREVRANGE', KEYS[1], ARGV[2], '-', 'COUNT', 1)
  if #before > 0 then target = before[1][1] end
end
local active, activeIdle = '', -1
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, idle = field(c, 'name'), field(c, 'idle')
  if name ~= ARGV[3] and (activeIdle < 0 or idle < activeIdle) then active, activeIdle = name, idle end
end
local read = field(group, 'entries-read')
local lagKnown = field(group, 'lag') and 1 or 0
return {1, field(group, 'last-delivered-id'), target, read or -1, lagKnown,
  field(redis.call('XINFO', 'STREAM', KEYS[1]), 'max-deleted-entry-id'), active, activeIdle}`);

/**
 * Counts up to ARGV[3] entries after ARGV[1] (exclusive) and up to ARGV[2] (inclusive): one
 * bounded step of counting a range, the caller continues from the last id returned.
 * Returns { entries counted, last id counted (ARGV[1] when none) }.
 *
 * KEYS: stream. ARGV: start id (exclusive), end id (inclusive), max entries.
 */
export const COUNT_RANGE = new Script(`
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], ARGV[2], 'COUNT', tonumber(ARGV[3]))
if #entries == 0 then return {0, ARGV[1]} end
return {#entries, entries[#entries][1]}`);

/**
 * Moves a group back (XGROUP SETID), but only if it is still where the rewind counted from: a
 * consumer that read meanwhile makes it fail with EWMOVED rather than move under that reader.
 * Entries of the range still pending for the group (given back, or left by a crashed consumer)
 * are acknowledged first: the group reads them again from the new position, so they come once
 * (and not also through XAUTOCLAIM). With an entries-read counter the group's lag stays known
 * after the move. Returns the number of pending entries acknowledged that way.
 *
 * KEYS: stream. ARGV: group, expected last delivered id, target id, entries read ('' = unknown).
 */
export const REWIND = new Script(`${FIELD}
local last = false
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if field(g, 'name') == ARGV[1] then last = field(g, 'last-delivered-id') end
end
if last ~= ARGV[2] then
  return redis.error_reply('EWMOVED the group moved while the rewind counted (a consumer is reading)')
end
local acked = 0
while true do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '(' .. ARGV[3], ARGV[2], 1000)
  if #pending == 0 then break end
  local ids = {}
  for _, p in ipairs(pending) do ids[#ids + 1] = p[1] end
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
end
if ARGV[4] == '' then
  redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], ARGV[3])
else
  redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], ARGV[3], 'ENTRIESREAD', ARGV[4])
end
return acked`);

/**
 * A group-wide rate limit: an exact sliding log in a sorted set of grant times (server clock,
 * microseconds). Grants older than the window leave; with fewer than `max` left the call is
 * recorded (a member unique to the caller) and gets 0, else it records nothing and gets the ms
 * until the grant that frees a slot leaves the window (at least 1). The key expires one window
 * after its last grant. Atomic, so concurrent callers never see more than `max` grants in any
 * window.
 *
 * KEYS: log. ARGV: max, window ms, unique member.
 */
export const RATE_LIMIT = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local held = redis.call('ZCARD', KEYS[1])
if held < max then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
  return 0
end
local frees = math.max(0, held - math.ceil(max))
local grant = redis.call('ZRANGE', KEYS[1], frees, frees, 'WITHSCORES')
return math.max(1, math.ceil((tonumber(grant[2]) + window - now) / 1000))`);
