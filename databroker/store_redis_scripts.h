/* SPDX-License-Identifier: MIT */
/* The Lua scripts of the Redis store: each write moves record, index, version and change. */
#ifndef BROKER_STORE_REDIS_SCRIPTS_H
#define BROKER_STORE_REDIS_SCRIPTS_H

/*
 * put: KEYS rec, idx, version, changes, epoch; ARGV type, id, data JSON, ttl (0 = none), now,
 * epoch candidate. type and id are validated to need no JSON escaping, and data is compact JSON
 * made by jansson, so the record is put together as text (cjson would turn [] into {}).
 * Returns {version, epoch, record}.
 */
#define BROKER_LUA_PUT                                                                             \
    "redis.call('SET', KEYS[5], ARGV[6], 'NX')\n"                                                  \
    "local epoch = redis.call('GET', KEYS[5])\n"                                                   \
    "local vs = string.format('%d', redis.call('INCR', KEYS[3]))\n"                                \
    "local ttl = tonumber(ARGV[4])\n"                                                              \
    "local exp = 'null'\n"                                                                         \
    "local score = 'inf'\n"                                                                        \
    "if ttl > 0 then\n"                                                                            \
    "  exp = string.format('%d', tonumber(ARGV[5]) + ttl)\n"                                       \
    "  score = exp\n"                                                                              \
    "end\n"                                                                                        \
    "local rec = '{\"type\":\"' .. ARGV[1] .. '\",\"id\":\"' .. ARGV[2] .. '\",\"version\":' .. " \
    "vs .. ',\"data\":' .. ARGV[3] .. ',\"expires_at\":' .. exp .. '}'\n"                          \
    "if ttl > 0 then\n"                                                                            \
    "  redis.call('SET', KEYS[1], rec, 'EX', ttl)\n"                                               \
    "else\n"                                                                                       \
    "  redis.call('SET', KEYS[1], rec)\n"                                                          \
    "end\n"                                                                                        \
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])\n"                                   \
    "redis.call('ZADD', KEYS[2], score, ARGV[2])\n"                                                \
    "redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', vs .. '-1', 'type', ARGV[1], 'id', "     \
    "ARGV[2], 'version', vs, 'deleted', '0')\n"                                                    \
    "return {vs, epoch, rec}\n"

/*
 * delete (ARGV[3] "0") and take (ARGV[3] "1"): KEYS as for put; ARGV type, id, take, epoch
 * candidate. Returns {"0", epoch} when absent, else {version, epoch[, record]}.
 */
#define BROKER_LUA_REMOVE                                                                          \
    "redis.call('SET', KEYS[5], ARGV[4], 'NX')\n"                                                  \
    "local epoch = redis.call('GET', KEYS[5])\n"                                                   \
    "local rec = redis.call('GET', KEYS[1])\n"                                                     \
    "redis.call('ZREM', KEYS[2], ARGV[2])\n"                                                       \
    "if not rec then\n"                                                                            \
    "  return {'0', epoch}\n"                                                                      \
    "end\n"                                                                                        \
    "redis.call('DEL', KEYS[1])\n"                                                                 \
    "local vs = string.format('%d', redis.call('INCR', KEYS[3]))\n"                                \
    "redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', vs .. '-1', 'type', ARGV[1], 'id', "     \
    "ARGV[2], 'version', vs, 'deleted', '1')\n"                                                    \
    "if ARGV[3] == '1' then\n"                                                                     \
    "  return {vs, epoch, rec}\n"                                                                  \
    "end\n"                                                                                        \
    "return {vs, epoch}\n"

/*
 * query: KEYS idx; ARGV now, cursor score ("" = from the start), cursor id, limit, record key
 * prefix. Order is (score, id), score = expiry or inf. The cursor is the (score, id) of the
 * last member looked at; its rank is found by placing it in the set for a moment (the script
 * is atomic, nobody sees that). Returns {full page 0|1, last score, last id, record...}.
 */
#define BROKER_LUA_QUERY                                                                           \
    "local function num(x)\n"                                                                      \
    "  if x == 'inf' or x == '+inf' then return math.huge end\n"                                   \
    "  return tonumber(x)\n"                                                                       \
    "end\n"                                                                                        \
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])\n"                                   \
    "local start = 0\n"                                                                            \
    "if ARGV[2] ~= '' then\n"                                                                      \
    "  local cur = redis.call('ZSCORE', KEYS[1], ARGV[3])\n"                                       \
    "  if cur and num(cur) == num(ARGV[2]) then\n"                                                 \
    "    start = redis.call('ZRANK', KEYS[1], ARGV[3]) + 1\n"                                      \
    "  else\n"                                                                                     \
    "    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])\n"                                          \
    "    start = redis.call('ZRANK', KEYS[1], ARGV[3])\n"                                          \
    "    if cur then\n"                                                                            \
    "      redis.call('ZADD', KEYS[1], cur, ARGV[3])\n"                                            \
    "      if num(cur) < num(ARGV[2]) then start = start + 1 end\n"                                \
    "    else\n"                                                                                   \
    "      redis.call('ZREM', KEYS[1], ARGV[3])\n"                                                 \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local limit = tonumber(ARGV[4])\n"                                                            \
    "local page = redis.call('ZRANGE', KEYS[1], start, start + limit - 1, 'WITHSCORES')\n"        \
    "local out = {0, '', ''}\n"                                                                    \
    "if #page == 2 * limit then out[1] = 1 end\n"                                                  \
    "for i = 1, #page, 2 do\n"                                                                     \
    "  local rec = redis.call('GET', ARGV[5] .. page[i])\n"                                        \
    "  if rec then\n"                                                                              \
    "    table.insert(out, rec)\n"                                                                 \
    "  else\n"                                                                                     \
    "    redis.call('ZREM', KEYS[1], page[i])\n"                                                   \
    "  end\n"                                                                                      \
    "  out[2] = page[i + 1]\n"                                                                     \
    "  out[3] = page[i]\n"                                                                         \
    "end\n"                                                                                        \
    "return out\n"

/* status: KEYS epoch, version; ARGV epoch candidate. Returns {epoch, version}. */
#define BROKER_LUA_STATUS                                                                          \
    "redis.call('SET', KEYS[1], ARGV[1], 'NX')\n"                                                  \
    "local v = redis.call('GET', KEYS[2])\n"                                                       \
    "if not v then v = '0' end\n"                                                                  \
    "return {redis.call('GET', KEYS[1]), v}\n"

#endif
