// Package product names the product, once: the names its users, clients,
// dashboards and secret scanners see. A fork renames them here
// (docs/make-it-yours.md); settings with the same purpose (MFA_ISSUER,
// JWT_AUDIENCE, MAIL_FROM) default to the same names in .env.example.
package product

const (
	// Name is the product as people read it: the API index, the OpenAPI
	// title (routes/api.go), the command line.
	Name = "Tollgate"
	// ID is the product in machine names: the HTTP authentication realm,
	// the metric prefix (ID_...), the binary.
	ID = "tollgate"
	// KeyPrefix starts every API key (KeyPrefix + "live_" or "test_"), so
	// a key is told from a JWT at a glance and secret scanners can find
	// leaked ones.
	KeyPrefix = "tg_"
	// ClientIDPrefix starts every OAuth client_id.
	ClientIDPrefix = "tgc_"
)

// CryptoContext separates the app's keyed hashes and derived keys (MFA
// secrets, recovery codes, outbox bodies, audit checkpoints) from any
// other use of the same keys. It is part of what is stored: changing it
// makes every stored secret unreadable, so a fork keeps it as it is.
const CryptoContext = "tollgate"
