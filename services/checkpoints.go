package services

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/product"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// Checkpoint is a signed record of the audit chain at one moment, kept
// outside the database (the log, and optionally a file): someone who can
// write the database can delete the newest rows and move the recorded
// head back, or delete the oldest and move the anchor forward, and the
// chain alone still verifies; against a checkpoint it does not.
type Checkpoint struct {
	Seq       int64     `json:"seq"`        // the head's row
	Hash      string    `json:"hash"`       // its hash
	AnchorSeq int64     `json:"anchor_seq"` // where the chain started then
	At        time.Time `json:"at"`
	Sig       string    `json:"sig"` // HMAC-SHA256 with AUDIT_KEY over the rest
}

var errBadCheckpoint = apperror.Define(apperror.Invalid, "invalid_checkpoint", "The checkpoint is malformed or its signature does not match")

// String is the checkpoint as one token (what the log line carries, and
// GET /admin/audit/verify?checkpoint= takes).
func (c Checkpoint) String() string {
	return fmt.Sprintf("%d.%s.%d.%d.%s", c.Seq, c.Hash, c.AnchorSeq, c.At.Unix(), c.Sig)
}

func (a *Audit) sign(c Checkpoint) string {
	m := hmac.New(sha256.New, a.key)
	fmt.Fprintf(m, product.CryptoContext+" audit checkpoint\x00%d\x00%s\x00%d\x00%d", c.Seq, c.Hash, c.AnchorSeq, c.At.Unix())
	return hex.EncodeToString(m.Sum(nil))
}

// ParseCheckpoint reads a checkpoint token and checks its signature.
func (a *Audit) ParseCheckpoint(s string) (Checkpoint, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 5 {
		return Checkpoint{}, errBadCheckpoint
	}
	seq, err1 := strconv.ParseInt(parts[0], 10, 64)
	anchor, err2 := strconv.ParseInt(parts[2], 10, 64)
	at, err3 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Checkpoint{}, errBadCheckpoint
	}
	c := Checkpoint{Seq: seq, Hash: parts[1], AnchorSeq: anchor, At: time.Unix(at, 0).UTC(), Sig: parts[4]}
	if !hmac.Equal([]byte(a.sign(c)), []byte(c.Sig)) {
		return Checkpoint{}, errBadCheckpoint
	}
	return c, nil
}

// WithCheckpointFile also appends every checkpoint to path (JSON lines),
// and reads the newest one there at verification.
func (a *Audit) WithCheckpointFile(path string) *Audit {
	a.checkpointFile = path
	return a
}

// Checkpoint signs the chain's head now, logs it, appends it to the
// checkpoint file if any, and remembers it.
func (a *Audit) Checkpoint(ctx context.Context) (Checkpoint, error) {
	var head models.AuditChain
	if err := a.db.WithContext(ctx).Where("id = 1").Take(&head).Error; err != nil {
		return Checkpoint{}, apperror.Wrap(err, "read audit chain")
	}
	c := Checkpoint{Seq: head.LastSeq, Hash: head.LastHash, AnchorSeq: head.AnchorSeq, At: a.clock.Now().UTC().Truncate(time.Second)}
	c.Sig = a.sign(c)
	a.log.Info("audit checkpoint", "seq", c.Seq, "hash", c.Hash, "anchor_seq", c.AnchorSeq, "checkpoint", c.String())
	if a.checkpointFile != "" {
		line, _ := json.Marshal(c)
		f, err := os.OpenFile(a.checkpointFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			_, err = f.Write(append(line, '\n'))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			a.log.Error("audit checkpoint not written to its file", "file", a.checkpointFile, "error", err)
		}
	}
	a.mu.Lock()
	a.latest = &c
	a.mu.Unlock()
	return c, nil
}

// Checkpoints signs a checkpoint every interval until ctx ends, and one
// more then (shutdown).
func (a *Audit) Checkpoints(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, err := a.Checkpoint(final); err != nil {
				a.log.Error("final audit checkpoint failed", "error", err)
			}
			cancel()
			return
		case <-t.C:
			if _, err := a.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("audit checkpoint failed", "error", err)
			}
		}
	}
}

// knownCheckpoint is the newest checkpoint this instance made, or the last
// line of the checkpoint file (another instance's, or before a restart).
func (a *Audit) knownCheckpoint() *Checkpoint {
	a.mu.Lock()
	latest := a.latest
	a.mu.Unlock()
	if a.checkpointFile == "" {
		return latest
	}
	f, err := os.Open(a.checkpointFile)
	if err != nil {
		return latest
	}
	defer f.Close()
	var last *Checkpoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c Checkpoint
		if json.Unmarshal(sc.Bytes(), &c) == nil && hmac.Equal([]byte(a.sign(c)), []byte(c.Sig)) {
			last = &c
		}
	}
	if last == nil || (latest != nil && latest.Seq > last.Seq) {
		return latest
	}
	return last
}

// checkAgainst reports what the chain lost since c, or "".
func (a *Audit) checkAgainst(ctx context.Context, c Checkpoint, head models.AuditChain) (string, error) {
	if head.LastSeq < c.Seq {
		return fmt.Sprintf("the chain ends at seq %d, before the checkpoint of %s (seq %d): newer rows were removed",
			head.LastSeq, c.At.Format(time.RFC3339), c.Seq), nil
	}
	if c.Seq > head.AnchorSeq {
		var row models.AuditEvent
		err := a.db.WithContext(ctx).Where("seq = ?", c.Seq).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && row.Hash != c.Hash) {
			return fmt.Sprintf("row %d is not what the checkpoint of %s saw", c.Seq, c.At.Format(time.RFC3339)), nil
		}
		if err != nil {
			return "", apperror.Wrap(err, "read audit event")
		}
	}
	return "", nil
}
