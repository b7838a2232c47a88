// Package caller is the one typed home of who is calling: the roles and
// tiers an account can hold, and the authenticated caller a request carries
// (a user today; an API key or an OAuth client later). Every layer may
// import it; models keep persistence, services the rules.
package caller

import (
	"context"
	"slices"

	"github.com/google/uuid"
)

// Role decides what a caller may do, from least to most privileged.
type Role string

// The roles.
const (
	Viewer Role = "viewer"
	Editor Role = "editor"
	Admin  Role = "admin"
)

// Roles lists every role, least privileged first.
func Roles() []Role { return []Role{Viewer, Editor, Admin} }

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles(), r) }

// Tier is the plan that decides a caller's rate limit.
type Tier string

// The tiers.
const (
	Free       Tier = "free"
	Paid       Tier = "paid"
	Enterprise Tier = "enterprise"
)

// Tiers lists every tier.
func Tiers() []Tier { return []Tier{Free, Paid, Enterprise} }

// Valid reports whether t is a known tier.
func (t Tier) Valid() bool { return slices.Contains(Tiers(), t) }

// Kind says what sort of credential authenticated the caller.
type Kind string

// The kinds of caller.
const (
	User Kind = "user" // an access token from login or refresh
)

// Caller is who an authenticated request comes from.
type Caller struct {
	Kind    Kind
	ID      uuid.UUID // the user's id for Kind User
	Role    Role
	Tier    Tier
	TokenID string // the credential's id (the access token's jti)
}

// Is reports whether the caller holds one of roles.
func (c *Caller) Is(roles ...Role) bool { return slices.Contains(roles, c.Role) }

type key struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c *Caller) context.Context { return context.WithValue(ctx, key{}, c) }

// From returns the caller on ctx, if the request was authenticated.
func From(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(key{}).(*Caller)
	return c, ok
}
