package services

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tollgate/tollgate/apperror"
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
// a check refused only because others are in flight (16 correct logins at
// once, a reservation each) waits its turn instead of being refused:
// first come, first served, so a steady stream cannot starve a waiter.
type inflight struct {
	mu      sync.Mutex
	pending map[string]*pending
}

type pending struct {
	n     int             // attempts reserved and not settled
	queue []chan struct{} // checks waiting for a settlement, oldest first
}

func newInflight() *inflight { return &inflight{pending: map[string]*pending{}} }

func (f *inflight) get(account string) *pending {
	p := f.pending[account]
	if p == nil {
		p = &pending{}
		f.pending[account] = p
	}
	return p
}

func (f *inflight) drop(account string, p *pending) {
	if p.n <= 0 && len(p.queue) == 0 {
		delete(f.pending, account)
	}
}

func (f *inflight) add(account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.get(account).n++
}

// settle ends one attempt and wakes the oldest waiter: a place may be free.
func (f *inflight) settle(account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.get(account)
	p.n--
	p.wake()
	f.drop(account, p)
}

func (p *pending) wake() {
	if len(p.queue) > 0 {
		close(p.queue[0])
		p.queue = p.queue[1:]
	}
}

// waiting reports whether checks of account already wait: a newcomer
// queues behind them rather than taking a place first.
func (f *inflight) waiting(account string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pending[account]
	return p != nil && len(p.queue) > 0
}

// wait queues a check (at the front when it was already first in line) and
// returns what is closed at its turn; nil when nothing is in flight, so a
// refusal stands (and the next waiter is told to look for itself).
func (f *inflight) wait(account string, front bool) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.get(account)
	if p.n <= 0 {
		p.wake()
		f.drop(account, p)
		return nil
	}
	ch := make(chan struct{})
	if front {
		p.queue = append([]chan struct{}{ch}, p.queue...)
	} else {
		p.queue = append(p.queue, ch)
	}
	return ch
}

// leave takes a check that stops waiting out of the queue; if its turn had
// come meanwhile, the turn passes to the next.
func (f *inflight) leave(account string, ch <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.get(account)
	for i, q := range p.queue {
		if q == ch {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			f.drop(account, p)
			return
		}
	}
	p.wake() // already woken: hand the turn on
	f.drop(account, p)
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

// errSpent: the account's attempt budget is spent; the caller answers
// exactly as for a wrong password or code.
var errSpent = errors.New("attempt budget spent")

// reserve counts one check against the account in every window before
// the check runs, so that of any number of concurrent guesses at most the
// limit are checked: counting failures after the fact let 50 parallel
// guesses through 81 checks of a 10-check budget. Every check of a
// password or code counts here (login, MFA verify, MFA enrolment, disable
// and recovery codes, password change): one budget, however it is spent.
// It returns errSpent when the budget is spent, apperror.ErrBusy when the
// check waited PASSWORD_HASH_MAX_WAIT for its turn behind others of the
// same account (overload, not a lockout: 503 with Retry-After). Call done
// with the outcome.
func (a *Auth) reserve(ctx context.Context, account string, client Client) (*attempt, error) {
	at := &attempt{a: a, ctx: ctx, account: account}
	if a.throttle.store == nil {
		return at, nil
	}
	deadline := time.NewTimer(a.throttle.wait)
	defer deadline.Stop()
	f := a.throttle.inflight
	skip := f.waiting(account) // behind others already waiting: no jumping the line
	first := false
	for {
		tried := false
		if !skip {
			if at.take() {
				f.add(account)
				return at, nil
			}
			// Refused: if checks of this account are in flight here, one of
			// them may be a right answer that gives its place back.
			tried = true
		}
		turn := f.wait(account, first)
		if turn == nil {
			if !tried {
				skip = false // the line emptied meanwhile: try for itself
				continue
			}
			a.lockedOut(ctx, account, client)
			return at, errSpent
		}
		select {
		case <-turn:
			skip, first = false, true
		case <-deadline.C:
			f.leave(account, turn)
			return at, apperror.ErrBusy
		case <-ctx.Done():
			f.leave(account, turn)
			return at, apperror.ErrTimeout.WithCause(ctx.Err())
		}
	}
}

// take counts the attempt under every policy; when one refuses, what the
// others took is given back.
func (at *attempt) take() bool {
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
			return false
		}
		at.taken = append(at.taken, r)
	}
	return true
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

// lockedOut logs and audits that account's budget is spent: once per
// window, not once per refused request (a second key of limit 1 under the
// first window says whether this is the first).
func (a *Auth) lockedOut(ctx context.Context, account string, client Client) {
	p := a.throttle.logins[0]
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
