package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tollgate/tollgate/services"
	"github.com/tollgate/tollgate/settings"
)

// Secrets are what the app signs, hashes and encrypts with.
type Secrets struct {
	Keys    *services.KeySet // the JWT key pair, and retired public keys
	Peppers services.Peppers // API key and client secret HMACs
	MFAKeys services.MFAKeys // TOTP secrets, outbox bodies
	// AuditKey is the audit log's hash-chain HMAC key.
	AuditKey []byte
}

// Generated names a secret file written because it was missing.
type Generated struct{ What, File string }

// LoadSecrets reads every secret cfg names. In development it first
// writes the missing ones into their files (the git-ignored config/), so
// `go run .` works on a fresh clone; production never generates.
func LoadSecrets(cfg settings.Config, log *slog.Logger) (Secrets, error) {
	generate := !cfg.IsProduction()
	if generate {
		_, errPriv := os.Stat(cfg.JWTPrivateKeyFile)
		_, errPub := os.Stat(cfg.JWTPublicKeyFile)
		if errors.Is(errPriv, os.ErrNotExist) && errors.Is(errPub, os.ErrNotExist) {
			if err := services.GenerateKeyPair(cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile, false); err != nil {
				return Secrets{}, fmt.Errorf("generate development keys: %w", err)
			}
			log.Info("generated a development JWT key pair", "private", cfg.JWTPrivateKeyFile, "public", cfg.JWTPublicKeyFile)
		}
	}
	ks, err := services.LoadKeySet(cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile, cfg.JWTPreviousPublicKeyFiles)
	if err != nil {
		if cfg.IsProduction() {
			return Secrets{}, fmt.Errorf("APP_ENV=production: unusable JWT keys: %w", err)
		}
		return Secrets{}, err
	}
	s, made, err := loadSymmetric(cfg, generate)
	if err != nil {
		return Secrets{}, err
	}
	for _, g := range made {
		log.Info("generated a development "+g.What, "file", g.File)
	}
	s.Keys = ks
	return s, nil
}

// WriteMissingSecrets writes the pepper, the MFA key and the audit key that
// have neither a value nor a file; it never replaces one (every stored
// HMAC and ciphertext depends on them: docs/secrets.md).
func WriteMissingSecrets(cfg settings.Config) ([]Generated, error) {
	_, made, err := loadSymmetric(cfg, true)
	return made, err
}

// loadSymmetric reads the pepper, the MFA key and the audit key, each from
// its variable or else its file, writing a missing file when generate.
func loadSymmetric(cfg settings.Config, generate bool) (Secrets, []Generated, error) {
	var s Secrets
	var made []Generated
	for _, sec := range []struct {
		name, what, value, file string
		version                 int
		previous                settings.PreviousSecrets
		into                    *services.Peppers
	}{
		{"API_KEY_PEPPER", "API key pepper", cfg.APIKeyPepper, cfg.APIKeyPepperFile, cfg.APIKeyPepperVersion, cfg.APIKeyPreviousPeppers, &s.Peppers},
		{"MFA_KEY", "MFA key", cfg.MFAKey, cfg.MFAKeyFile, cfg.MFAKeyVersion, cfg.MFAPreviousKeys, &s.MFAKeys},
		{"AUDIT_KEY", "audit key", cfg.AuditKey, cfg.AuditKeyFile, 1, nil, nil},
	} {
		secret, created, err := loadSecret(sec.name, sec.value, sec.file, generate)
		if err != nil {
			return Secrets{}, nil, err
		}
		if created {
			made = append(made, Generated{What: sec.what, File: sec.file})
		}
		if sec.into == nil {
			s.AuditKey = []byte(secret)
			continue
		}
		p := services.Peppers{Current: sec.version, Secrets: map[int][]byte{sec.version: []byte(secret)}}
		for v, old := range sec.previous {
			p.Secrets[v] = []byte(old)
		}
		*sec.into = p
	}
	return s, made, nil
}

// loadSecret returns value, or else the content of the file at path,
// which is generated (32 random bytes, hex, mode 0600) when missing and
// generate is set. name is the variable pair to name in errors.
func loadSecret(name, value, path string, generate bool) (string, bool, error) {
	if value != "" {
		return value, false, nil
	}
	created := false
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && generate {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", false, err
		}
		b = []byte(hex.EncodeToString(raw) + "\n")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return "", false, err
		}
		created, err = true, nil
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

// checkProduction refuses what must never happen in production.
func checkProduction(cfg settings.Config) error {
	if !cfg.IsProduction() {
		return nil
	}
	if cfg.DatabaseURL == "" {
		return errors.New("APP_ENV=production needs DATABASE_URL (the embedded SQLite file is for development)")
	}
	for _, f := range []string{cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("APP_ENV=production needs the JWT key file %s (JWT_PRIVATE_KEY_FILE / JWT_PUBLIC_KEY_FILE): %w", f, errors.Unwrap(err))
		}
	}
	// Like ssh with a private key: a secret others on the host can read is
	// no secret. Files only where the value is not given directly.
	secrets := []struct{ name, value, file string }{
		{"JWT_PRIVATE_KEY_FILE", "", cfg.JWTPrivateKeyFile},
		{"API_KEY_PEPPER_FILE", cfg.APIKeyPepper, cfg.APIKeyPepperFile},
		{"MFA_KEY_FILE", cfg.MFAKey, cfg.MFAKeyFile},
		{"AUDIT_KEY_FILE", cfg.AuditKey, cfg.AuditKeyFile},
	}
	for _, s := range secrets {
		if s.value != "" || s.file == "" {
			continue
		}
		info, err := os.Stat(s.file)
		if err != nil {
			continue // missing: the loader names it
		}
		if info.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("%s %s is readable by others (mode %04o): run chmod 600 %s (owned by the user the app runs as)",
				s.name, s.file, info.Mode().Perm(), s.file)
		}
	}
	return nil
}
