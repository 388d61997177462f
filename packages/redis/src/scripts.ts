/**
 * Lua scripts: each one is a step that must be atomic on the server (move a retry between the
 * stream and its delay set, release a closing consumer's entries, trim safely). Scripts only
 * touch keys of one topic, which share a hash tag (see keys.ts).
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
 * Moves due retries back to the end of the stream (as new entries carrying their target group
 * and attempt) and removes them from the delay set, in one step: a crash cannot lose or double
 * them. Returns { moved, ms until the next one is due or -1 }.
 *
 * KEYS: stream, delay set. ARGV: max entries to move.
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
 * older than the oldest pending entry of each group, and than its last delivered entry. A
 * stream without groups is not trimmed. With a max length, entries beyond it are then dropped
 * even if unacknowledged, and their number is returned so the caller can say so.
 * Returns { trimmed safely, dropped unacknowledged }.
 *
 * KEYS: stream. ARGV: max length (0 = none).
 */
export const TRIM = new Script(`
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
