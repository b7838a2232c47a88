package services

import (
	"context"
	"sync"
	"time"

	"github.com/tollgate/tollgate/ratelimit"
)

// accountThrottle holds the per-account limits: password and code checks
// (several windows, so the cooling period grows with persistence up to the
// longest) and reset requests.
type accountThrottle struct {
	store  ratelimit.Store // nil: no per-account limits
	logins []ratelimit.Policy
	forgot ratelimit.Policy
	mail   ratelimit.Policy
	// wait bounds how long a check waits for this instance's checks of the
	// same account in flight to settle (the password-hash queue's bound).
	wait     time.Duration
	inflight *inflight
}

// inflight counts the unsettled attempts per account on this instance, so
// a check refused only because others are in flight (20 correct logins at
// once, a reservation each) waits for them instead of being refused.
type inflight struct {
	mu      sync.Mutex
	pending map[string]*pending
}

type pending struct {
	n       int
	settled chan struct{} // closed, and replaced, at each settlement
}

func newInflight() *inflight { return &inflight{pending: map[string]*pending{}} }

func (f *inflight) add(account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pending[account]
	if p == nil {
		p = &pending{settled: make(chan struct{})}
		f.pending[account] = p
	}
	p.n++
}

func (f *inflight) settle(account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pending[account]
	if p == nil {
		return
	}
	p.n--
	close(p.settled)
	p.settled = make(chan struct{})
	if p.n <= 0 {
		delete(f.pending, account)
	}
}

// next is closed when an attempt of account settles; nil when none is in
// flight (a refusal then stands).
func (f *inflight) next(account string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.pending[account]; p != nil {
		return p.settled
	}
	return nil
}

// attempt is one password or second-factor check reserved against an
// account's budget.
type attempt struct {
	a       *Auth
	ctx     context.Context
	account string
	taken   []ratelimit.Result // per policy, in a.throttle.logins order
	settled bool
}

// reserve counts one check against the account in every window before
// the check runs, so that of any number of concurrent guesses at most the
// limit are checked: counting failures after the fact let 50 parallel
// guesses through 81 checks of a 10-check budget. Every check of a
// password or code counts here (login, MFA verify, MFA enrolment, disable
// and recovery codes, password change): one budget, however it is spent.
// ok false means the budget is spent: the caller answers exactly as for a
// wrong password or code. Call done with the outcome.
func (a *Auth) reserve(ctx context.Context, account string, client Client) (at *attempt, ok bool) {
	at = &attempt{a: a, ctx: ctx, account: account}
	if a.throttle.store == nil {
		return at, true
	}
	deadline := time.NewTimer(a.throttle.wait)
	defer deadline.Stop()
	for {
		refused, ok := at.take()
		if ok {
			a.throttle.inflight.add(account)
			return at, true
		}
		// Refused: if checks of this account are in flight here, one of
		// them may be a right answer that gives its attempt back; wait for
		// it rather than refuse a person whose own tabs logged in at once.
		next := a.throttle.inflight.next(account)
		if next == nil {
			a.lockedOut(ctx, account, refused, client)
			return at, false
		}
		select {
		case <-next:
		case <-deadline.C:
			a.lockedOut(ctx, account, refused, client)
			return at, false
		case <-ctx.Done():
			return at, false
		}
	}
}

// take counts the attempt under every policy; when one refuses, what the
// others took is given back and the refusing policy returned.
func (at *attempt) take() (ratelimit.Policy, bool) {
	a := at.a
	at.taken = at.taken[:0]
	for _, p := range a.throttle.logins {
		r, err := a.throttle.store.Take(at.ctx, at.account, p)
		if err != nil {
			// The store could not count it: the check goes ahead (the
			// per-IP limits still stand) rather than lock everyone out.
			a.log.Debug("per-account attempt limit unavailable", "error", err)
			at.taken = append(at.taken, ratelimit.Result{})
			continue
		}
		if !r.Allowed {
			at.giveBack()
			return p, false
		}
		at.taken = append(at.taken, r)
	}
	return ratelimit.Policy{}, true
}

// done settles the attempt: a right answer gives it back (successes never
// use up the budget), a wrong one keeps it.
func (at *attempt) done(right bool) {
	if at.a.throttle.store == nil || at.settled {
		return
	}
	at.settled = true
	if right {
		at.giveBack()
	}
	at.a.throttle.inflight.settle(at.account)
}

func (at *attempt) giveBack() {
	for i, r := range at.taken {
		if !r.Allowed {
			continue
		}
		// The outcome is known: the give-back is not the client's to cancel.
		if err := at.a.throttle.store.Give(context.WithoutCancel(at.ctx), at.account, at.a.throttle.logins[i], r); err != nil {
			at.a.log.Warn("per-account attempt not given back: one check of the budget stays used", "error", err)
		}
	}
	at.taken = at.taken[:0]
}

// lockedOut logs and audits that account's budget under p is spent: once
// per window, not once per refused request (a second key of limit 1 under
// the same window says whether this is the first).
func (a *Auth) lockedOut(ctx context.Context, account string, p ratelimit.Policy, client Client) {
	notice := ratelimit.Policy{Name: p.Name + "_locked", Limit: 1, Window: p.Window}
	if r, err := a.throttle.store.Take(ctx, account, notice); err != nil || !r.Allowed {
		return
	}
	a.log.Warn("security event", "event", "auth.account_locked", "account", account, "policy", p.Name, "ip", client.IP)
	a.audit.RecordAlone(ctx, Event{Action: "auth.account_locked", Outcome: Failure, Reason: p.Name,
		TargetType: "account", TargetID: account})
}

// mailAllowed counts one mail to email against its address's cap (60
// mails reached one inbox in seconds from 6 addresses before): past it the
// mail is withheld, and the answer stays the same.
func (a *Auth) mailAllowed(ctx context.Context, email string) bool {
	if a.throttle.store == nil || a.throttle.mail.Limit == 0 {
		return true
	}
	r, err := a.throttle.store.Take(ctx, accountKey(email)+":mail", a.throttle.mail)
	if err == nil && !r.Allowed {
		a.log.Warn("security event", "event", "mail.address_limited", "account", accountKey(email))
		return false
	}
	return true
}
