package database

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/migrations"
)

// Role is who a PostgreSQL connection acts as, and whether row-level
// security binds it.
type Role struct {
	Name       string
	Superuser  bool // superusers skip every policy
	BypassRLS  bool // so do roles with BYPASSRLS
	OwnsTables bool // an owner can switch the policies off (ALTER TABLE)
}

// Unbound says why row-level security does not bind r ("" when it does).
func (r Role) Unbound() string {
	var why []string
	if r.Superuser {
		why = append(why, "is a superuser")
	}
	if r.BypassRLS {
		why = append(why, "has BYPASSRLS")
	}
	if r.OwnsTables {
		why = append(why, "owns the tables")
	}
	if len(why) == 0 {
		return ""
	}
	return fmt.Sprintf("database role %q %s", r.Name, strings.Join(why, " and "))
}

// Role reads this connection's role. ok is false on SQLite, which has
// no roles.
func (d *DB) Role(ctx context.Context) (r Role, ok bool, err error) {
	if d.Dialect != migrations.Postgres {
		return Role{}, false, nil
	}
	// OwnsTables: the role (or a role it belongs to) owns a table under
	// row-level security in the schema the app uses.
	err = d.WithContext(ctx).Raw(`SELECT current_user AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls,
		EXISTS (SELECT 1 FROM pg_class c WHERE c.relrowsecurity AND c.relnamespace = current_schema()::regnamespace
			AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owns_tables
		FROM pg_roles r WHERE r.rolname = current_user`).Row().Scan(&r.Name, &r.Superuser, &r.BypassRLS, &r.OwnsTables)
	if err != nil {
		return Role{}, true, fmt.Errorf("read the database role: %w", err)
	}
	return r, true, nil
}

// Grant gives role what the app needs in the schema d migrated, and no
// more: rows of every table (row-level security still decides which),
// the sequences, and nothing it could alter or drop. d connects as the
// tables' owner.
func (d *DB) Grant(ctx context.Context, role string) error {
	var schema string
	if err := d.WithContext(ctx).Raw("SELECT current_schema()").Row().Scan(&schema); err != nil {
		return fmt.Errorf("read the schema: %w", err)
	}
	who, where := pgx.Identifier{role}.Sanitize(), pgx.Identifier{schema}.Sanitize()
	for _, stmt := range []string{
		"GRANT USAGE ON SCHEMA " + where + " TO " + who,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + where + " TO " + who,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA " + where + " TO " + who,
	} {
		if err := d.WithContext(ctx).Exec(stmt).Error; err != nil {
			return fmt.Errorf("grant %s to %s: %w", where, role, err)
		}
	}
	return nil
}
