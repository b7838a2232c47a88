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

// randomBase62 returns n characters from crypto/rand, without modulo bias.
func randomBase62(n int) (string, error) {
	buf := make([]byte, 0, n)
	b := make([]byte, 64)
	for len(buf) < n {
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		for _, c := range b {
			if c < 248 && len(buf) < n { // 248 = 4*62
				buf = append(buf, base62[c%62])
			}
		}
	}
	return string(buf), nil
}
