package services

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/database/scan"
)

// Row-level security on PostgreSQL (migration 00016) confines the
// org-owned tables (projects, api_keys, oauth_clients, invitations) to the
// organization the transaction names; a query run outside these helpers
// sees none of their rows. The services still filter by org_id themselves:
// this is the second wall, for the query that forgets. SQLite has no such
// wall, and the helpers there only run fn.

// inOrg runs fn with the org-owned tables confined to org: inside db's
// transaction when it is one, else in a transaction of its own (the
// setting is transaction-local, so a pooled connection never carries it on).
func inOrg(ctx context.Context, db *gorm.DB, org uuid.UUID, fn func(*gorm.DB) error) error {
	return scoped(ctx, db, "app.org_id", org.String(), fn)
}

// readInOrg is inOrg for a read that fn makes with scan.Find or
// scan.FindOne only: outside a transaction on PostgreSQL the org is set in
// the read's own batch (one round trip, no BEGIN and COMMIT); GORM's own
// queries are refused there, so a read that strays fails loudly instead of
// seeing no rows.
func readInOrg(ctx context.Context, db *gorm.DB, org uuid.UUID, fn func(*gorm.DB) error) error {
	db = db.WithContext(ctx)
	if _, native := db.Statement.ConnPool.(scan.NativeQuerier); native && db.Dialector.Name() == "postgres" {
		return fn(db.WithContext(scan.Scoped(ctx, scan.Scope{Setting: "app.org_id", Value: org.String()})))
	}
	return inOrg(ctx, db, org, fn)
}

// acrossOrgs runs fn with every organization's rows visible: for the reads
// that must find the organization first (a key by its hash, an invitation
// by its token) and for work that spans them (purges, revoking a person's
// keys in every organization). Keep its uses few and read them in review.
func acrossOrgs(ctx context.Context, db *gorm.DB, fn func(*gorm.DB) error) error {
	return scoped(ctx, db, "app.all_orgs", "on", fn)
}

// enterOrg confines the rest of transaction tx to org, as inOrg does.
func enterOrg(tx *gorm.DB, org uuid.UUID) error {
	return setScope(tx, "app.org_id", org.String())
}

// enterAllOrgs opens every organization to the rest of transaction tx, as
// acrossOrgs does.
func enterAllOrgs(tx *gorm.DB) error {
	return setScope(tx, "app.all_orgs", "on")
}

func setScope(tx *gorm.DB, key, value string) error {
	if tx.Dialector.Name() != "postgres" {
		return nil
	}
	if _, inTx := tx.Statement.ConnPool.(gorm.TxCommitter); !inTx {
		// Outside a transaction the setting would bind one pooled
		// connection for one statement: a bug in the caller.
		return errors.New("tenancy: scope set outside a transaction")
	}
	if err := tx.Exec("SELECT set_config(?, ?, true)", key, value).Error; err != nil {
		return apperror.Wrap(err, "set "+key)
	}
	return nil
}

func scoped(ctx context.Context, db *gorm.DB, key, value string, fn func(*gorm.DB) error) error {
	db = db.WithContext(ctx)
	if db.Dialector.Name() != "postgres" {
		return fn(db)
	}
	if _, inTx := db.Statement.ConnPool.(gorm.TxCommitter); inTx {
		if err := setScope(db, key, value); err != nil {
			return err
		}
		return fn(db)
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := setScope(tx, key, value); err != nil {
			return err
		}
		return fn(tx)
	})
}
