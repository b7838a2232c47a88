package services

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

// Audit outcomes.
const (
	Success = "success"
	Failure = "failure"
)

// Event is what a service records; who and from where come from the
// request's context unless Actor* are set.
type Event struct {
	Action     string
	Outcome    string // Success unless set
	Reason     string // a code, never a secret
	TargetType string
	TargetID   string
	ActorType  string // default: the request's caller, else anonymous
	ActorID    string
	OrgID      string // default: the organization the caller acts in
}

// Audit writes the audit log as a hash chain, in the caller's transaction,
// and verifies, lists, exports and purges it. It never stores passwords,
// tokens or codes: events carry ids and reason codes only.
type Audit struct {
	db    *gorm.DB
	clock clock.Clock
	key   []byte
	log   *slog.Logger
	// onRecord runs in the transaction of every recorded event (the
	// webhooks' outbox).
	onRecord func(tx *gorm.DB, e *models.AuditEvent) error

	checkpointFile string // "": checkpoints go to the log only
	mu             sync.Mutex
	latest         *Checkpoint // the newest this instance signed
}

// NewAudit builds the audit log; key is the HMAC key of the chain.
func NewAudit(db *gorm.DB, clk clock.Clock, key []byte, log *slog.Logger) *Audit {
	return &Audit{db: db, clock: clk, key: key, log: log}
}

// Record appends e to the chain inside tx. The chain head is locked for
// the rest of tx (PostgreSQL: FOR UPDATE; SQLite writes one at a time), so
// audited transactions append one after another.
func (a *Audit) Record(ctx context.Context, tx *gorm.DB, e Event) error {
	q := tx.Model(&models.AuditChain{}).Where("id = 1")
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var head models.AuditChain
	if err := q.Take(&head).Error; err != nil {
		return apperror.Wrap(err, "read audit chain")
	}
	req := caller.RequestFrom(ctx)
	row := models.AuditEvent{
		Seq: head.LastSeq + 1, OccurredAt: a.clock.Now().UTC().Truncate(time.Microsecond),
		ActorType: e.ActorType, ActorID: e.ActorID, Action: e.Action, Outcome: e.Outcome, Reason: e.Reason,
		TargetType: e.TargetType, TargetID: e.TargetID, OrgID: e.OrgID,
		IP: CleanText(req.IP, 64), UserAgent: CleanText(req.UserAgent, 512), RequestID: auditRequestID(req),
		PrevHash: head.LastHash,
	}
	if row.Outcome == "" {
		row.Outcome = Success
	}
	if row.ActorType == "" {
		row.ActorType, row.ActorID = "anonymous", ""
		if who, ok := caller.From(ctx); ok {
			row.ActorType, row.ActorID = string(who.Kind), who.ID.String()
			switch who.Kind {
			case caller.APIKey:
				row.ActorID = who.TokenID
			case caller.Client:
				row.ActorID = who.ClientID
			}
		}
	}
	if who, ok := caller.From(ctx); ok && row.OrgID == "" && who.OrgID != uuid.Nil {
		row.OrgID = who.OrgID.String()
	}
	row.Hash = a.hash(&row)
	if err := tx.Create(&row).Error; err != nil {
		return apperror.Wrap(err, "write audit event")
	}
	if err := tx.Model(&models.AuditChain{}).Where("id = 1").
		Updates(map[string]any{"last_seq": row.Seq, "last_hash": row.Hash}).Error; err != nil {
		return apperror.Wrap(err, "advance audit chain")
	}
	if a.onRecord != nil {
		// Webhooks: the event's messages commit (or not) with the change.
		return a.onRecord(tx, &row)
	}
	return nil
}

// RecordAlone records e in a transaction of its own (events with no
// change to go with, such as a failed login). A failure is logged, never
// returned: the request's answer does not depend on it.
func (a *Audit) RecordAlone(ctx context.Context, e Event) {
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return a.Record(ctx, tx, e) })
	if err != nil {
		a.log.Error("audit event not written", "action", e.Action, "error", err)
	}
}

// hash is the HMAC over the previous hash and the row's content. org_id
// joins the content only when set, so rows from before organizations keep
// their hashes.
func (a *Audit) hash(r *models.AuditEvent) string {
	fields := []any{r.Seq, r.OccurredAt.UTC().Format(time.RFC3339Nano), r.ActorType, r.ActorID, r.Action, r.Outcome,
		r.Reason, r.TargetType, r.TargetID, r.IP, r.UserAgent, r.RequestID}
	if r.OrgID != "" {
		fields = append(fields, r.OrgID)
	}
	content, _ := json.Marshal(fields)
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(r.PrevHash))
	m.Write([]byte{'\n'})
	m.Write(content)
	return hex.EncodeToString(m.Sum(nil))
}

// AuditFilter narrows a listing.
type AuditFilter struct {
	ActorID, Action string
	OrgID           string // "": every organization's
	Since, Until    *time.Time
	Before          int64 // cursor: only rows with seq below it (0: from the newest)
}

// List returns up to limit events, newest first, and the cursor for more.
func (a *Audit) List(ctx context.Context, f AuditFilter, limit int) ([]models.AuditEvent, int64, error) {
	q := a.db.WithContext(ctx).Model(&models.AuditEvent{})
	if f.ActorID != "" {
		q = q.Where("actor_id = ?", f.ActorID)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.OrgID != "" {
		q = q.Where("org_id = ?", f.OrgID)
	}
	if f.Since != nil {
		q = q.Where("occurred_at >= ?", *f.Since)
	}
	if f.Until != nil {
		q = q.Where("occurred_at < ?", *f.Until)
	}
	if f.Before > 0 {
		q = q.Where("seq < ?", f.Before)
	}
	var rows []models.AuditEvent
	if err := q.Order("seq DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, 0, apperror.Wrap(err, "list audit events")
	}
	var next int64
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].Seq
	}
	return rows, next, nil
}

// Verification is the result of checking the chain.
type Verification struct {
	Valid     bool   `json:"valid"`
	Checked   int64  `json:"checked"`              // rows checked
	FirstBad  int64  `json:"first_bad,omitempty"`  // seq of the first row that does not verify
	Problem   string `json:"problem,omitempty"`    // what is wrong with it
	AnchorSeq int64  `json:"anchor_seq,omitempty"` // where the chain starts after purges
	// Checkpoint is the signed checkpoint the chain was checked against
	// (given, or the newest known), as its token; empty: none.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// Verify walks the chain from its anchor to its head, and checks it
// against checkpoint (a token from the log; nil: the newest this instance
// knows): rows the checkpoint saw must still be there, unchanged, and an
// anchor moved forward must be a purge's, recorded in the chain.
func (a *Audit) Verify(ctx context.Context, checkpoint *Checkpoint) (Verification, error) {
	var head models.AuditChain
	if err := a.db.WithContext(ctx).Where("id = 1").Take(&head).Error; err != nil {
		return Verification{}, apperror.Wrap(err, "read audit chain")
	}
	out := Verification{Valid: true, AnchorSeq: head.AnchorSeq}
	if checkpoint == nil {
		checkpoint = a.knownCheckpoint()
	}
	if checkpoint != nil {
		out.Checkpoint = checkpoint.String()
		problem, err := a.checkAgainst(ctx, *checkpoint, head)
		if err != nil {
			return out, err
		}
		if problem != "" {
			out.Valid, out.FirstBad, out.Problem = false, min(head.LastSeq, checkpoint.Seq)+1, problem
			return out, nil
		}
	}
	prevSeq, prevHash := head.AnchorSeq, head.AnchorHash
	fail := func(seq int64, problem string) (Verification, error) {
		out.Valid, out.FirstBad, out.Problem = false, seq, problem
		return out, nil
	}
	for {
		var rows []models.AuditEvent
		if err := a.db.WithContext(ctx).Where("seq > ?", prevSeq).Order("seq").Limit(500).Find(&rows).Error; err != nil {
			return out, apperror.Wrap(err, "read audit events")
		}
		for i := range rows {
			r := &rows[i]
			switch {
			case r.Seq != prevSeq+1:
				return fail(prevSeq+1, "missing row")
			case r.PrevHash != prevHash:
				return fail(r.Seq, "does not follow the previous row")
			case !hmac.Equal([]byte(a.hash(r)), []byte(r.Hash)):
				return fail(r.Seq, "content does not match its hash")
			}
			prevSeq, prevHash = r.Seq, r.Hash
			out.Checked++
		}
		if len(rows) < 500 {
			break
		}
	}
	if prevSeq != head.LastSeq || prevHash != head.LastHash {
		return fail(prevSeq+1, "the chain ends before its recorded head")
	}
	// The anchor moves only with a purge, which records in the chain how
	// far it deleted: an anchor moved further hides the oldest rows.
	var purged []string
	if err := a.db.WithContext(ctx).Model(&models.AuditEvent{}).Where("action = ?", "audit.purged").Order("seq DESC").Limit(1).
		Pluck("reason", &purged).Error; err != nil {
		return out, apperror.Wrap(err, "read audit purges")
	}
	through := int64(0)
	if len(purged) == 1 {
		through = purgedThrough(purged[0])
	}
	if head.AnchorSeq != through {
		return fail(head.AnchorSeq, fmt.Sprintf("the chain starts after seq %d, but the last purge recorded deleting through seq %d", head.AnchorSeq, through))
	}
	return out, nil
}

// Purge deletes events older than retention and moves the anchor to the
// newest deleted row, so what remains still verifies.
func (a *Audit) Purge(ctx context.Context, retention time.Duration) (int64, error) {
	cutoff := a.clock.Now().Add(-retention)
	var deleted int64
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var last models.AuditEvent
		err := tx.Where("occurred_at < ?", cutoff).Order("seq DESC").Limit(1).Take(&last).Error
		if err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return nil
			}
			return apperror.Wrap(err, "find old audit events")
		}
		if err := tx.Model(&models.AuditChain{}).Where("id = 1").
			Updates(map[string]any{"anchor_seq": last.Seq, "anchor_hash": last.Hash}).Error; err != nil {
			return apperror.Wrap(err, "move audit anchor")
		}
		res := tx.Where("seq <= ?", last.Seq).Delete(&models.AuditEvent{})
		if res.Error != nil {
			return apperror.Wrap(res.Error, "purge audit events")
		}
		deleted = res.RowsAffected
		// The purge itself is on the record, by the system.
		return a.Record(ctx, tx, Event{Action: "audit.purged", ActorType: "system", Reason: purgeReason(deleted, last.Seq)})
	})
	return deleted, err
}

// Do runs change and records e in one transaction: both happen, or neither.
func (a *Audit) Do(ctx context.Context, db *gorm.DB, e Event, change func(tx *gorm.DB) error) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := change(tx); err != nil {
			return err
		}
		return a.Record(ctx, tx, e)
	})
}

// auditRequestID is the request id as the audit log keeps it: one the
// client chose is marked "client:", so it is never taken for the server's.
func auditRequestID(r caller.Request) string {
	if r.IDFromClient {
		return "client:" + CleanText(r.ID, 64)
	}
	return CleanText(r.ID, 64)
}

// purgeReason is how an audit.purged event records what it deleted, and
// purgedThrough reads it back: the anchor must stand where the last purge
// said it deleted through.
func purgeReason(deleted, through int64) string {
	return fmt.Sprintf("%d events through seq %d", deleted, through)
}

func purgedThrough(reason string) int64 {
	var deleted, through int64
	if _, err := fmt.Sscanf(reason, "%d events through seq %d", &deleted, &through); err != nil {
		return -1 // not a purge's: no anchor matches it
	}
	return through
}
