package services

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/ratelimit"
)

// loginThrottle is the per-account budget every password and code check
// spends from, and the checks themselves.
type loginThrottle struct {
	*accountDeps
	accountThrottle
	dummyHash []byte
}

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

// dummyHashes holds one hash of a random password per bcrypt cost, made
// once per process: every NewAccounts of that cost (tests build hundreds) compares
// unknown accounts against it.
var dummyHashes sync.Map

func dummyHash(cost int) ([]byte, error) {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte), nil
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	h, err := bcrypt.GenerateFromPassword(secret, cost)
	if err != nil {
		return nil, err
	}
	actual, _ := dummyHashes.LoadOrStore(cost, h)
	return actual.([]byte), nil
}

// accountKey names an account in the rate-limit store: a hash of the
// normalised address, so unknown addresses count too and no address is
// stored in clear.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(NormalizeEmail(email)))
	return "acct:" + hex.EncodeToString(sum[:16])
}

// throttleKey names an account's failed-login counters: its address and
// its current password hash, so a password reset (or change) starts them
// afresh. Failures cannot lock the owner out for longer than it takes to
// reset the password.
func throttleKey(email string, u *models.User) string {
	h := sha256.New()
	h.Write([]byte(NormalizeEmail(email)))
	if u != nil {
		h.Write([]byte{0})
		h.Write([]byte(u.PasswordHash))
	}
	return "login:" + hex.EncodeToString(h.Sum(nil)[:16])
}

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
func (a *loginThrottle) reserve(ctx context.Context, account string, client Client) (*attempt, error) {
	at := &attempt{a: a, ctx: ctx, account: account}
	if a.store == nil {
		return at, nil
	}
	deadline := time.NewTimer(a.wait)
	defer deadline.Stop()
	f := a.inflight
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

// lockedOut logs and audits that account's budget is spent: once per
// window, not once per refused request (a second key of limit 1 under the
// first window says whether this is the first).
func (a *loginThrottle) lockedOut(ctx context.Context, account string, client Client) {
	p := a.logins[0]
	notice := ratelimit.Policy{Name: p.Name + "_locked", Limit: 1, Window: p.Window}
	if r, err := a.store.Take(ctx, account, notice); err != nil || !r.Allowed {
		return
	}
	a.log.Warn("security event", "event", "auth.account_locked", "account", account, "policy", p.Name, "ip", client.IP)
	a.audit.RecordAlone(ctx, Event{Action: "auth.account_locked", Outcome: Failure, Reason: p.Name,
		TargetType: "account", TargetID: account})
}

// mailAllowed counts one mail to email against its address's cap (60
// mails reached one inbox in seconds from 6 addresses before): past it the
// mail is withheld, and the answer stays the same.
func (a *loginThrottle) mailAllowed(ctx context.Context, email string) bool {
	if a.store == nil || a.mail.Limit == 0 {
		return true
	}
	r, err := a.store.Take(ctx, accountKey(email)+":mail", a.mail)
	if err == nil && !r.Allowed {
		a.log.Warn("security event", "event", "mail.address_limited", "account", accountKey(email))
		return false
	}
	return true
}

// checkPassword is a signed-in user's proof of the password (changing it,
// turning MFA on or off), one attempt of the account's budget like a login:
// a stolen access token is no password oracle. A spent budget answers as
// a wrong password, after the same work.
func (a *loginThrottle) checkPassword(ctx context.Context, u *models.User, password string) error {
	at, err := a.reserve(ctx, throttleKey(u.Email, u), Client{})
	if err != nil && !errors.Is(err, errSpent) {
		return err
	}
	if err != nil {
		if _, err := a.hasher.Matches(ctx, a.dummyHash, password); err != nil {
			return err
		}
		return errWrongPassword
	}
	ok, err := a.hasher.Matches(ctx, a.hashOf(u), password)
	if err != nil {
		at.done(true) // not checked: a fault is not a guess
		return err
	}
	at.done(ok)
	if err := a.upgradeHash(ctx, u, password, ok); err != nil {
		return err
	}
	if !ok {
		return errWrongPassword
	}
	return nil
}

// hashOf is the hash to check u's password against: for an account with no
// password (made by a provider sign-in) the dummy one, the same work as a
// wrong password and never a match, so timing does not tell such accounts
// apart.
func (a *loginThrottle) hashOf(u *models.User) []byte {
	if u.PasswordHash == "" {
		return a.dummyHash
	}
	return []byte(u.PasswordHash)
}

// codeAttempt runs check, a transaction that checks a second-factor code,
// as one attempt of u's budget (see reserve): wrong is the error check
// returns for a wrong code, and what a spent budget answers, unchecked.
func (a *loginThrottle) codeAttempt(ctx context.Context, u *models.User, wrong error, check func(tx *gorm.DB) error) error {
	at, err := a.reserve(ctx, throttleKey(u.Email, u), Client{})
	if errors.Is(err, errSpent) {
		return wrong
	}
	if err != nil {
		return err
	}
	err = a.db.WithContext(ctx).Transaction(check)
	at.done(!errors.Is(err, wrong))
	return err
}

// upgradeHash rehashes u's password at the current BCRYPT_COST after a
// right password (right is the check's outcome), when it was hashed at a
// lower one. A wrong password for such an account costs the same: a
// comparison at the current cost. Either way it answers as slowly as an
// up-to-date account (8 ms against 245 ms once told such accounts apart).
func (a *loginThrottle) upgradeHash(ctx context.Context, u *models.User, password string, right bool) error {
	if !a.hasher.Stale([]byte(u.PasswordHash)) {
		return nil
	}
	if !right {
		_, err := a.hasher.Matches(ctx, a.dummyHash, password)
		return err
	}
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	// Only if unchanged meanwhile: a concurrent password change wins.
	if err := a.db.WithContext(ctx).Model(&models.User{}).Where("id = ? AND password_hash = ?", u.ID, u.PasswordHash).
		Update("password_hash", string(hash)).Error; err != nil {
		return apperror.Wrap(err, "rehash password")
	}
	u.PasswordHash = string(hash)
	return nil
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
	a       *loginThrottle
	ctx     context.Context
	account string
	taken   []ratelimit.Result // per policy, in a.logins order
	settled bool
}

// errSpent: the account's attempt budget is spent; the caller answers
// exactly as for a wrong password or code.
var errSpent = errors.New("attempt budget spent")

// take counts the attempt under every policy; when one refuses, what the
// others took is given back.
func (at *attempt) take() bool {
	a := at.a
	at.taken = at.taken[:0]
	for _, p := range a.logins {
		r, err := a.store.Take(at.ctx, at.account, p)
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
	if at.a.store == nil || at.settled {
		return
	}
	at.settled = true
	if right {
		at.giveBack()
	}
	at.a.inflight.settle(at.account)
}

func (at *attempt) giveBack() {
	for i, r := range at.taken {
		if !r.Allowed {
			continue
		}
		// The outcome is known: the give-back is not the client's to cancel.
		if err := at.a.store.Give(context.WithoutCancel(at.ctx), at.account, at.a.logins[i], r); err != nil {
			at.a.log.Warn("per-account attempt not given back: one check of the budget stays used", "error", err)
		}
	}
	at.taken = at.taken[:0]
}
