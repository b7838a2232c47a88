package services

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// LoadSecret returns value, or else the content of the file at path,
// which is generated (32 random bytes, hex, mode 0600) when missing and
// generate is set. name is the variable pair to name in errors.
func LoadSecret(name, value, path string, generate bool) (string, bool, error) {
	if value != "" {
		return value, false, nil
	}
	created := false
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && generate {
		raw, rerr := newOpaqueToken(32)
		if rerr != nil {
			return "", false, rerr
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", false, err
		}
		if err := os.WriteFile(path, []byte(raw+"\n"), 0o600); err != nil {
			return "", false, err
		}
		b, err, created = []byte(raw), nil, true
	}
	if err != nil {
		return "", false, fmt.Errorf("%s (or %s_FILE %s): %w", name, name, path, err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 32 {
		return "", false, fmt.Errorf("%s_FILE %s: must hold at least 32 characters", name, path)
	}
	return secret, created, nil
}

// LoadPeppers builds the API key peppers: the current one from secret (an
// environment value) or else the file at path (see LoadSecret); previous
// ones from VERSION:SECRET pairs (already checked by settings).
func LoadPeppers(secret, path string, version int, previous []string, generate bool) (Peppers, bool, error) {
	return loadVersioned("API_KEY_PEPPER", secret, path, version, previous, generate)
}

// LoadMFAKeys builds the TOTP secret encryption keys, like LoadPeppers.
func LoadMFAKeys(secret, path string, version int, previous []string, generate bool) (MFAKeys, bool, error) {
	return loadVersioned("MFA_KEY", secret, path, version, previous, generate)
}

func loadVersioned(name, secret, path string, version int, previous []string, generate bool) (Peppers, bool, error) {
	secret, created, err := LoadSecret(name, secret, path, generate)
	if err != nil {
		return Peppers{}, false, err
	}
	p := Peppers{Current: version, Secrets: map[int][]byte{version: []byte(secret)}}
	for _, pair := range previous {
		v, s, _ := strings.Cut(pair, ":")
		n, _ := strconv.Atoi(v)
		p.Secrets[n] = []byte(s)
	}
	return p, created, nil
}
