package services

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// newOpaqueToken returns n random bytes, hex-encoded.
func newOpaqueToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// hashToken is how opaque tokens are stored: SHA-256, hex. A fast hash is
// right here because the tokens carry 256+ bits of entropy.
func hashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}
