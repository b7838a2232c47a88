package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/ratelimit"
)

// IP rule actions and sources.
const (
	IPAllow = "allow"
	IPBlock = "block"
	// Sources: configuration (IP_ALLOWLIST, IP_BLOCKLIST; not stored), the
	// admin API, or an automatic temporary block.
	IPFromConfig = "config"
	IPFromAdmin  = "admin"
	IPFromAuto   = "auto"
)

// IPRulesConfig configures the IP rules.
type IPRulesConfig struct {
	Allow, Block []netip.Prefix // from configuration
	// AutoBlock: this many rate-limit refusals of one IP within its window
	// block the IP for AutoBlockFor (Limit 0: never).
	AutoBlock    ratelimit.Policy
	AutoBlockFor time.Duration
	Store        ratelimit.Store // counts the refusals
	Redis        redis.UniversalClient
	KeyPrefix    string
}

// IPRules decide whether a client address may call at all. The stored
// rules are copied into memory, where every request reads them; a change
// on any instance is announced through Redis and every instance reloads.
type IPRules struct {
	db      *gorm.DB
	clock   clock.Clock
	audit   *Audit
	log     *slog.Logger
	metrics *metrics.Metrics
	cfg     IPRulesConfig
	channel string

	mu    sync.RWMutex
	rules []ipRule // stored ones
}

type ipRule struct {
	prefix  netip.Prefix
	allow   bool
	source  string
	expires time.Time // zero: never
}

// NewIPRules builds the rules; Reload (or Run) reads the stored ones.
func NewIPRules(db *gorm.DB, clk clock.Clock, audit *Audit, log *slog.Logger, m *metrics.Metrics, cfg IPRulesConfig) *IPRules {
	return &IPRules{db: db, clock: clk, audit: audit, log: log, metrics: m, cfg: cfg, channel: cfg.KeyPrefix + "ip-rules:changed"}
}

// Blocked reports whether ip may not call, and by which rule's source. An
// allow rule wins over any block: operators list their own offices and
// monitors there.
func (s *IPRules) Blocked(ip string) (bool, string) {
	blocked, source := s.blocked(ip)
	if blocked {
		s.metrics.IPBlocked.WithLabelValues(source).Inc()
	}
	return blocked, source
}

func (s *IPRules) blocked(ip string) (bool, string) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false, ""
	}
	addr = addr.Unmap()
	for _, p := range s.cfg.Allow {
		if p.Contains(addr) {
			return false, ""
		}
	}
	now := s.clock.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	blockedBy := ""
	for _, r := range s.rules {
		if (!r.expires.IsZero() && !now.Before(r.expires)) || !r.prefix.Contains(addr) {
			continue
		}
		if r.allow {
			return false, ""
		}
		blockedBy = r.source
	}
	if blockedBy == "" {
		for _, p := range s.cfg.Block {
			if p.Contains(addr) {
				blockedBy = IPFromConfig
				break
			}
		}
	}
	return blockedBy != "", blockedBy
}

// Reload reads the stored rules that have not expired.
func (s *IPRules) Reload(ctx context.Context) error {
	var rows []models.IPRule
	if err := s.db.WithContext(ctx).Where("expires_at IS NULL OR expires_at > ?", s.clock.Now()).Find(&rows).Error; err != nil {
		return apperror.Wrap(err, "load ip rules")
	}
	rules := make([]ipRule, 0, len(rows))
	for _, r := range rows {
		p, err := ParseCIDR(r.CIDR)
		if err != nil {
			s.log.Warn("ip rule ignored: not a CIDR", "id", r.ID, "cidr", r.CIDR)
			continue
		}
		rule := ipRule{prefix: p, allow: r.Action == IPAllow, source: r.Source}
		if r.ExpiresAt != nil {
			rule.expires = *r.ExpiresAt
		}
		rules = append(rules, rule)
	}
	s.mu.Lock()
	s.rules = rules
	s.mu.Unlock()
	return nil
}

// ipRulesResync is how often an instance rereads the rules even without
// a change announced (a lost message, an instance that started during one).
const ipRulesResync = 30 * time.Second

// Run keeps the copy current until ctx ends: at every change another
// instance announces, and every ipRulesResync.
func (s *IPRules) Run(ctx context.Context) {
	var msgs <-chan *redis.Message
	if s.cfg.Redis != nil {
		sub := s.cfg.Redis.Subscribe(ctx, s.channel)
		defer sub.Close()
		msgs = sub.Channel()
	}
	if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("ip rules: first load failed; retrying", "error", err)
	}
	t := time.NewTicker(ipRulesResync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-msgs:
			if !ok {
				return
			}
		case <-t.C:
		}
		if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("ip rules: reload failed; keeping the last copy", "error", err)
		}
	}
}

// changed reloads this instance's copy and tells the others.
func (s *IPRules) changed(ctx context.Context) {
	if err := s.Reload(ctx); err != nil {
		s.log.Warn("ip rules: reload failed", "error", err)
	}
	if s.cfg.Redis != nil {
		if err := s.cfg.Redis.Publish(ctx, s.channel, "1").Err(); err != nil {
			s.log.Warn("ip rules: could not announce a change; other instances reload within 30s", "error", err)
		}
	}
}

// ParseCIDR reads a CIDR or a single address (a /32 or /128), masked.
func ParseCIDR(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, errors.New("an IPv4-mapped range shorter than /96")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// NewIPRule is what an operator asks for.
type NewIPRule struct {
	CIDR, Action, Reason string
	TTL                  time.Duration // 0: until removed
}

var (
	errIPRuleUnknown = apperror.Define(apperror.NotFound, "ip_rule_not_found", "No such IP rule")
	// ErrIPBlocked answers a request from a blocked address.
	ErrIPBlocked = apperror.Define(apperror.Forbidden, "ip_blocked", "Requests from this address are blocked")
)

// Create stores a rule (platform operators) and applies it everywhere.
func (s *IPRules) Create(ctx context.Context, who *caller.Caller, in NewIPRule) (*models.IPRule, error) {
	p, err := ParseCIDR(in.CIDR)
	if err != nil {
		return nil, apperror.Validation(map[string]string{"cidr": "must be an IPv4 or IPv6 address or CIDR, such as 203.0.113.0/24 or 2001:db8::/32"})
	}
	if in.Action != IPAllow && in.Action != IPBlock {
		return nil, apperror.Validation(map[string]string{"action": "must be allow or block"})
	}
	if in.TTL < 0 {
		return nil, apperror.Validation(map[string]string{"ttl": "must not be negative"})
	}
	now := s.clock.Now()
	row := models.IPRule{ID: uuid.New(), CIDR: p.String(), Action: in.Action, Source: IPFromAdmin, Reason: CleanText(in.Reason, 200), CreatedAt: now}
	if who != nil && who.Kind == caller.User {
		row.CreatedBy = &who.ID
	}
	if in.TTL > 0 {
		exp := now.Add(in.TTL)
		row.ExpiresAt = &exp
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return apperror.Wrap(err, "store ip rule")
		}
		return s.audit.Record(ctx, tx, Event{Action: "ip_rule.created", Reason: row.Action + " " + row.CIDR, TargetType: "ip_rule", TargetID: row.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return &row, nil
}

// List is every stored rule that has not expired, newest first.
func (s *IPRules) List(ctx context.Context) ([]models.IPRule, error) {
	var rows []models.IPRule
	err := s.db.WithContext(ctx).Where("expires_at IS NULL OR expires_at > ?", s.clock.Now()).Order("created_at DESC, id").Find(&rows).Error
	if err != nil {
		return nil, apperror.Wrap(err, "list ip rules")
	}
	return rows, nil
}

// Delete removes a stored rule (an automatic block too).
func (s *IPRules) Delete(ctx context.Context, id uuid.UUID) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&models.IPRule{})
		if res.Error != nil {
			return apperror.Wrap(res.Error, "delete ip rule")
		}
		if res.RowsAffected == 0 {
			return errIPRuleUnknown
		}
		return s.audit.Record(ctx, tx, Event{Action: "ip_rule.deleted", TargetType: "ip_rule", TargetID: id.String()})
	})
	if err != nil {
		return err
	}
	s.changed(ctx)
	return nil
}

// Refused counts a rate-limit refusal of client (an address, or an IPv6
// client's /64); past AutoBlock's limit in its window it is blocked for
// AutoBlockFor (once: later requests stop at the block).
func (s *IPRules) Refused(ctx context.Context, client string) {
	if s.cfg.AutoBlock.Limit == 0 || s.cfg.Store == nil {
		return
	}
	p, err := ParseCIDR(client)
	if err != nil {
		return
	}
	if blocked, _ := s.blocked(p.Addr().String()); blocked {
		return
	}
	for _, a := range s.cfg.Allow {
		if a.Contains(p.Addr()) {
			return
		}
	}
	// The Nth refusal in the window takes the last unit: block from here.
	r, err := s.cfg.Store.Take(ctx, p.String(), s.cfg.AutoBlock)
	if err != nil || (r.Allowed && r.Remaining > 0) {
		return
	}
	now := s.clock.Now()
	exp := now.Add(s.cfg.AutoBlockFor)
	row := models.IPRule{ID: uuid.New(), CIDR: p.String(), Action: IPBlock, Source: IPFromAuto, CreatedAt: now, ExpiresAt: &exp,
		Reason: fmt.Sprintf("%d rate-limit refusals within %s", s.cfg.AutoBlock.Limit, s.cfg.AutoBlock.Window)}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Another instance may have blocked it a moment ago.
		var n int64
		if err := tx.Model(&models.IPRule{}).Where("cidr = ? AND source = ? AND expires_at > ?", row.CIDR, IPFromAuto, now).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return errAlreadyBlocked
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, Event{Action: "ip.auto_blocked", Reason: row.Reason, TargetType: "ip", TargetID: row.CIDR,
			ActorType: "system", ActorID: "rate_limiter"})
	})
	if errors.Is(err, errAlreadyBlocked) {
		s.changed(ctx)
		return
	}
	if err != nil {
		s.log.Warn("automatic IP block not stored", "ip", client, "error", err)
		return
	}
	s.metrics.IPAutoBlocks.Inc()
	s.log.Warn("security: IP blocked after repeated rate-limit refusals", "event", "ip_auto_blocked", "ip", row.CIDR, "until", exp)
	s.changed(ctx)
}

var errAlreadyBlocked = errors.New("already blocked")

// Configured are the configuration's allow and block CIDRs.
func (s *IPRules) Configured() (allow, block []string) {
	allow, block = []string{}, []string{}
	for _, p := range s.cfg.Allow {
		allow = append(allow, p.String())
	}
	for _, p := range s.cfg.Block {
		block = append(block, p.String())
	}
	return allow, block
}
