// Package caller is the one typed home of who is calling: the roles and
// tiers an account can hold, and the authenticated caller a request carries
// (a user, an API key or an OAuth client) and the scopes it may use. Every layer may
// import it; models keep persistence, services the rules.
package caller

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Role decides what a member of an organization may do, from least to
// most privileged. Routes name viewer, editor and admin; an owner is an
// admin who also owns the organization (RouteRole).
type Role string

// The roles.
const (
	Viewer Role = "viewer"
	Editor Role = "editor"
	Admin  Role = "admin"
	Owner  Role = "owner"
)

// Roles lists every role, least privileged first.
func Roles() []Role { return []Role{Viewer, Editor, Admin, Owner} }

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles(), r) }

// DefaultOrgRoles are the roles one may hold in the default organization:
// every role but owner (the platform owns it).
func DefaultOrgRoles() []Role {
	return slices.DeleteFunc(Roles(), func(r Role) bool { return r == Owner })
}

// RouteRole is the role the route table knows r as (the access token's
// role claim): an owner passes wherever an admin does.
func (r Role) RouteRole() Role {
	if r == Owner {
		return Admin
	}
	return r
}

// Manages reports whether r may manage the organization's members and
// invitations (owners and admins).
func (r Role) Manages() bool { return r == Owner || r == Admin }

// Rank orders roles from least (0) to most privileged; -1: unknown.
func (r Role) Rank() int { return slices.Index(Roles(), r) }

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

// Scope names what a credential may do; each route declares the one it
// needs (routes/). A user's token carries the scopes its role implies; an
// API key or OAuth client holds a subset of its owner's.
type Scope string

type scopeDef struct {
	scope       Scope
	description string
	roles       []Role
}

// scopes holds every defined scope, in definition order. DefineScope runs
// at package initialisation only, so reads need no lock.
var scopes []scopeDef

// DefineScope adds a scope, what it allows and the roles that imply it.
// Call it in a package-level var next to the routes that need it
// (routes/projects.go), so a resource and its scopes come and go together.
func DefineScope(name, description string, roles ...Role) Scope {
	for _, d := range scopes {
		if string(d.scope) == name {
			panic("caller: scope " + name + " defined twice")
		}
	}
	scopes = append(scopes, scopeDef{Scope(name), description, roles})
	return Scope(name)
}

// AllScopes lists every scope, in definition order.
func AllScopes() []Scope {
	out := make([]Scope, len(scopes))
	for i, d := range scopes {
		out[i] = d.scope
	}
	return out
}

// Valid reports whether s is a defined scope.
func (s Scope) Valid() bool { return slices.Contains(AllScopes(), s) }

// Description says what s allows.
func (s Scope) Description() string {
	for _, d := range scopes {
		if d.scope == s {
			return d.description
		}
	}
	return ""
}

// Scopes are what r implies: today's role rules, as scopes.
func (r Role) Scopes() []Scope {
	var out []Scope
	r = r.RouteRole()
	for _, d := range scopes {
		if slices.Contains(d.roles, r) {
			out = append(out, d.scope)
		}
	}
	return out
}

// ParseScopes reads a space-separated scope string (RFC 6749 section 3.3),
// sorted and without repeats; it names the first unknown scope.
func ParseScopes(s string) ([]Scope, string, bool) {
	var out []Scope
	for _, f := range strings.Fields(s) {
		sc := Scope(f)
		if !sc.Valid() {
			return nil, f, false
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return SortScopes(out), "", true
}

// SortScopes orders scopes as AllScopes does.
func SortScopes(s []Scope) []Scope {
	slices.SortFunc(s, func(a, b Scope) int { return slices.Index(AllScopes(), a) - slices.Index(AllScopes(), b) })
	return s
}

// FormatScopes writes scopes space-separated, as OAuth does.
func FormatScopes(s []Scope) string { return Join(s, " ") }

// Join writes roles, tiers or scopes separated by sep, for messages and
// usage text that list what the code knows.
func Join[T Role | Tier | Scope](list []T, sep string) string {
	parts := make([]string, len(list))
	for i, n := range list {
		parts[i] = string(n)
	}
	return strings.Join(parts, sep)
}

// Intersect returns the scopes of a also in b, in a's order.
func Intersect(a, b []Scope) []Scope {
	out := []Scope{}
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// Subset reports whether every scope of a is in b.
func Subset(a, b []Scope) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

// Kind says what sort of credential authenticated the caller.
type Kind string

// The kinds of caller.
const (
	User   Kind = "user"    // an access token from login or refresh
	APIKey Kind = "api_key" // an API key, acting for its owner
	Client Kind = "client"  // an OAuth client's access token (client credentials)
)

// Limit is a rate limit of Requests per Per.
type Limit struct {
	Requests int64
	Per      time.Duration
}

// Caller is who an authenticated request comes from, acting in one
// organization (OrgID). For an API key or an OAuth client, ID, Role and
// Tier are its owner's in the credential's organization as they are now,
// and Scopes are the credential's, cut to what that role still allows.
type Caller struct {
	Kind Kind
	ID   uuid.UUID // the user's id; for a key or a client, its owner's
	// OrgID is the organization the caller acts in (uuid.Nil: none, a
	// person who belongs to no organization).
	OrgID uuid.UUID
	// OrgRole is the role in OrgID; Role is what the route table knows it
	// as (OrgRole.RouteRole()).
	OrgRole Role
	Role    Role
	Tier    Tier
	// OrgTier is the organization's own tier, for its org-wide budget
	// (empty: the organization has none, as the default one).
	OrgTier Tier
	// Platform: a platform operator (an owner or admin of the default
	// organization), who may use the /admin routes.
	Platform bool
	Scopes   []Scope
	TokenID  string // the credential's id: the access token's jti, the key's id
	// SessionID is a user's session (refresh-token family), when known.
	SessionID string
	// ClientID is the OAuth client's client_id (Kind Client).
	ClientID string
	// RateLimit, when set, is the credential's own limit (below its tier's).
	RateLimit *Limit
	// Bucket is the rate-limit bucket the caller counts against; empty: the
	// user's own (ID). Keys and clients have their own unless configured.
	Bucket string
}

// Is reports whether the caller holds one of roles.
func (c *Caller) Is(roles ...Role) bool { return slices.Contains(roles, c.Role) }

// Has reports whether the caller holds scope s.
func (c *Caller) Has(s Scope) bool { return slices.Contains(c.Scopes, s) }

type key struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c *Caller) context.Context { return context.WithValue(ctx, key{}, c) }

// From returns the caller on ctx, if the request was authenticated.
func From(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(key{}).(*Caller)
	return c, ok
}

// Request is where a request comes from, for the audit log.
type Request struct {
	IP        string
	UserAgent string
	ID        string // the request id (X-Request-Id)
	// IDFromClient: the client sent ID (in a safe shape) rather than the
	// server making it, so it proves nothing about the request.
	IDFromClient bool
}

type requestKey struct{}

// WithRequest returns ctx carrying r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request info on ctx (zero outside a request).
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}
