package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/clock"
)

// takeScript counts a request atomically in one round trip. The key is a
// hash of sub-window index -> count; buckets that left the window are
// deleted, and the key expires one window after its last use. Time comes
// from Redis (TIME) so instances with skewed clocks still agree, unless the
// caller passes now (tests that drive a clock).
var takeScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local slot = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cur = math.floor(now / slot)
local min = math.floor((now - window) / slot)
local h = redis.call('HGETALL', KEYS[1])
local count = 0
local out = {0, now, cur}
for i = 1, #h, 2 do
  local idx = tonumber(h[i])
  local n = tonumber(h[i + 1])
  if idx < min then
    redis.call('HDEL', KEYS[1], h[i])
  else
    count = count + n
    if idx ~= cur then
      out[#out + 1] = idx
      out[#out + 1] = n
    end
  end
end
local curCount = tonumber(redis.call('HGET', KEYS[1], cur) or '0')
if count < limit then
  curCount = redis.call('HINCRBY', KEYS[1], cur, 1)
  out[1] = 1
end
if curCount > 0 then
  out[#out + 1] = cur
  out[#out + 1] = curCount
end
redis.call('PEXPIRE', KEYS[1], window + slot)
return out
`)

// refundScript un-counts one request from a sub-window.
var refundScript = redis.NewScript(`
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if n > 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
elseif n == 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`)

// Redis is the shared store. Keys are {prefix}rl:{policy}:{key}.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	clock   clock.Clock // nil: Redis TIME
}

// NewRedis builds a Redis store; every call is bounded by timeout.
func NewRedis(client redis.UniversalClient, prefix string, timeout time.Duration) *Redis {
	return &Redis{client: client, prefix: prefix, timeout: timeout}
}

// WithClock makes the store use clk instead of Redis TIME (tests only).
func (r *Redis) WithClock(clk clock.Clock) *Redis {
	c := *r
	c.clock = clk
	return &c
}

func (r *Redis) key(p Policy, key string) string { return r.prefix + "rl:" + p.Name + ":" + key }

// Take implements Store.
func (r *Redis) Take(ctx context.Context, key string, p Policy) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	now := int64(-1)
	if r.clock != nil {
		now = r.clock.Now().UnixMilli()
	}
	raw, err := takeScript.Run(ctx, r.client, []string{r.key(p, key)},
		p.Limit, p.Window.Milliseconds(), p.slotMillis(), now).Int64Slice()
	if err != nil {
		return Result{}, err
	}
	if len(raw) < 3 || len(raw)%2 != 1 {
		return Result{}, fmt.Errorf("rate limit script returned %v", raw)
	}
	buckets := make([]bucket, 0, (len(raw)-3)/2)
	for i := 3; i+1 < len(raw); i += 2 {
		buckets = append(buckets, bucket{idx: raw[i], n: raw[i+1]})
	}
	return evaluate(p, raw[1], raw[0] == 1, raw[2], buckets), nil
}

// Refund implements Store.
func (r *Redis) Refund(ctx context.Context, key string, p Policy, res Result) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return refundScript.Run(ctx, r.client, []string{r.key(p, key)}, res.slot).Err()
}
