package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/clock"
)

// takeScript counts a request atomically in one round trip, under one
// key or several (all of them or none). Each key is a hash: one field per
// sub-window index (its count), "s" the running sum of those counts, "o"
// the oldest index present and "on" its count. Buckets that left the
// window are subtracted from "s" as they leave, so a steady call is three
// commands (HMGET, HINCRBY, HSET) instead of reading and summing all 31
// buckets (BenchmarkRedisScriptCPU measures the Redis CPU). The answer per
// key is {allowed, now, count, reset, retry}: the same numbers evaluate
// gives for the memory store, so both stores agree exactly.
//
// Time comes from Redis (TIME) so instances with skewed clocks still agree,
// unless the caller passes now (tests that drive a clock). A dry run
// reports whether a request would be allowed and counts nothing.
var takeScript = redis.NewScript(`
local function take(key, limit, window, slot, now, dry, slots)
local cur = math.floor(now / slot)
local min = math.floor((now - window) / slot)
local meta = redis.call('HMGET', key, 's', 'o', 'on')
local sum = tonumber(meta[1]) or 0
local o = tonumber(meta[2])
local on = tonumber(meta[3]) or 0
local dirty = false
if o == nil or sum <= 0 then
  sum, o, on = 0, nil, 0
elseif o < min then
  dirty = true
  if o + slots + 1 < min then
    -- Every bucket lies within slots+1 of the oldest: all have left.
    redis.call('DEL', key)
    sum, o, on = 0, nil, 0
  else
    for i = o, min - 1 do
      local n = tonumber(redis.call('HGET', key, i))
      if n then
        sum = sum - n
        redis.call('HDEL', key, i)
      end
    end
    o, on = nil, 0
    if sum > 0 then
      for i = min, cur do
        local n = tonumber(redis.call('HGET', key, i))
        if n then
          o, on = i, n
          break
        end
      end
    end
    if o == nil then
      -- Nothing is left in the window: start afresh (and say so below).
      sum = 0
    end
  end
end
local allowed = sum < limit
if allowed and not dry then
  local c = redis.call('HINCRBY', key, cur, 1)
  if c == 1 then
    -- The key lives until its newest bucket leaves the window.
    redis.call('PEXPIRE', key, window + slot)
  end
  sum = sum + 1
  if o == nil then
    o, on = cur, c
  elseif o == cur then
    on = c
  end
  dirty = true
end
if dirty and sum <= 0 then
  -- Every bucket left the window. Without this, a dry run (Peek) that
  -- pruned the last bucket left the old sum behind with no bucket to match.
  redis.call('DEL', key)
end
local reset = now + window
local retry = 0
if sum > 0 then
  reset = (o + 1) * slot + window
  if not allowed then
    -- When enough old buckets have left for one more request.
    local i = o
    local left = sum - on
    while left >= limit and i < cur do
      i = i + 1
      left = left - (tonumber(redis.call('HGET', key, i)) or 0)
    end
    reset = (i + 1) * slot + window
    retry = reset - now
  end
  if dirty then
    redis.call('HSET', key, 's', sum, 'o', o, 'on', on)
  end
end
if allowed then allowed = 1 else allowed = 0 end
return {allowed, now, sum, reset, retry}
end

-- ARGV: now (negative: Redis TIME), dry ('1': count nothing), slots, then
-- limit, window and slot per key. Every key is checked first, counting
-- nothing; only when all allow is the request counted under each: one
-- request, counted under all of its limits or none.
local now = tonumber(ARGV[1])
local dry = ARGV[2] == '1'
local slots = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if #KEYS == 1 then
  return take(KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), now, dry, slots)
end
local out = {}
local all = true
for i = 1, #KEYS do
  local b = 3 + (i - 1) * 3
  local r = take(KEYS[i], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), now, true, slots)
  all = all and r[1] == 1
  out[i] = r
end
if all and not dry then
  for i = 1, #KEYS do
    local b = 3 + (i - 1) * 3
    out[i] = take(KEYS[i], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), now, false, slots)
  end
end
local flat = {}
for i = 1, #KEYS do
  for k = 1, 5 do flat[#flat + 1] = out[i][k] end
  if not all then flat[#flat - 4] = 0 end
end
return flat
`)

// giveScript takes one request back out of sub-window ARGV[1] of the key
// takeScript keeps, if that sub-window is still there. An emptied bucket
// stays (count 0) so "o" still names a bucket; takeScript prunes it when
// it leaves the window.
var giveScript = redis.NewScript(`
local key = KEYS[1]
local n = tonumber(redis.call('HGET', key, ARGV[1]))
if not n or n <= 0 then return 0 end
local meta = redis.call('HMGET', key, 's', 'o')
local sum = (tonumber(meta[1]) or 1) - 1
if sum <= 0 then
  redis.call('DEL', key)
  return 1
end
redis.call('HINCRBY', key, ARGV[1], -1)
redis.call('HSET', key, 's', sum)
if tonumber(meta[2]) == tonumber(ARGV[1]) then redis.call('HINCRBY', key, 'on', -1) end
return 1
`)

// Redis is the shared store. Keys are PREFIX rl:POLICY:{KEY}: every script
// touches one key, and the braces make KEY the hash tag, so on a Redis
// Cluster a key's counts live on one slot and keys spread over the masters.
type Redis struct {
	client  redis.Scripter
	prefix  string
	timeout time.Duration
	clock   clock.Clock // nil: Redis TIME
}

// NewRedis builds a Redis store; every call is bounded by timeout.
func NewRedis(client redis.Scripter, prefix string, timeout time.Duration) *Redis {
	return &Redis{client: client, prefix: prefix, timeout: timeout}
}

// WithClock counts windows on clk instead of Redis TIME: an injected clock
// (tests cross windows without sleeping). Left alone, every instance reads
// Redis TIME, so instances whose clocks drift still agree.
func (r *Redis) WithClock(clk clock.Clock) *Redis {
	c := *r
	c.clock = clk
	return &c
}

func (r *Redis) key(p Policy, key string) string { return r.prefix + "rl:" + p.Name + ":{" + key + "}" }

// keyOf is where a Limit counts: with a Tag, in the tag's hash slot, so
// the keys one TakeAll touches share a slot on a Cluster.
func (r *Redis) keyOf(l Limit) string {
	if l.Tag == "" {
		return r.key(l.Policy, l.Key)
	}
	return r.prefix + "rl:" + l.Policy.Name + ":{" + l.Tag + "}:" + l.Key
}

// Take implements Store.
func (r *Redis) Take(ctx context.Context, key string, p Policy) (Result, error) {
	res, err := r.run(ctx, []Limit{{Key: key, Policy: p}}, "0")
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// Peek implements Store.
func (r *Redis) Peek(ctx context.Context, key string, p Policy) (Result, error) {
	res, err := r.run(ctx, []Limit{{Key: key, Policy: p}}, "1")
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// TakeAll implements Store: one script call for every limit.
func (r *Redis) TakeAll(ctx context.Context, limits []Limit) ([]Result, error) {
	return r.run(ctx, limits, "0")
}

// Give implements Store.
func (r *Redis) Give(ctx context.Context, key string, p Policy, taken Result) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return giveScript.Run(ctx, r.client, []string{r.key(p, key)}, taken.At.UnixMilli()/p.slotMillis()).Err()
}

func (r *Redis) run(ctx context.Context, limits []Limit, dry string) ([]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	now := int64(-1)
	if r.clock != nil {
		now = r.clock.Now().UnixMilli()
	}
	keys := make([]string, len(limits))
	args := make([]any, 0, 3+3*len(limits))
	args = append(args, now, dry, Slots)
	for i, l := range limits {
		keys[i] = r.keyOf(l)
		args = append(args, l.Policy.Limit, l.Policy.Window.Milliseconds(), l.Policy.slotMillis())
	}
	raw, err := takeScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return nil, err
	}
	if len(raw) != 5*len(limits) {
		return nil, fmt.Errorf("rate limit script returned %v", raw)
	}
	out := make([]Result, len(limits))
	for i, l := range limits {
		v := raw[5*i : 5*i+5]
		out[i] = Result{
			Allowed:    v[0] == 1,
			Limit:      l.Policy.Limit,
			Remaining:  max(l.Policy.Limit-v[2], 0),
			Reset:      time.UnixMilli(v[3]),
			RetryAfter: time.Duration(v[4]) * time.Millisecond,
			At:         time.UnixMilli(v[1]),
		}
	}
	return out, nil
}

// beatScript announces ARGV[1] as alive at Redis's own time (instances'
// clocks may differ), forgets instances silent for ARGV[2] ms, and returns
// how many are left.
var beatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
`)

func (r *Redis) instancesKey() string { return r.prefix + "rl:{instances}" }

// Beat implements Prober.
func (r *Redis) Beat(ctx context.Context, instance string, ttl time.Duration) (int64, error) {
	return beatScript.Run(ctx, r.client, []string{r.instancesKey()}, instance, ttl.Milliseconds()).Int64()
}

// Leave implements Prober.
func (r *Redis) Leave(ctx context.Context, instance string) {
	if c, ok := r.client.(redis.Cmdable); ok {
		c.ZRem(ctx, r.instancesKey(), instance)
	}
}
