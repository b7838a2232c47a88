package services

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/product"

	"github.com/google/uuid"
)

// MFAKeys encrypt TOTP secrets at rest: AES-256-GCM with a key derived from
// MFA_KEY (SHA-256 of it), by version like the API key peppers.
type MFAKeys = Peppers

// aeadFor is the AES-256-GCM of key version for purpose: the TOTP secrets
// use SHA-256 of the key itself (""), anything else SHA-256 of the purpose
// and the key, so one MFA_KEY serves several uses without one ciphertext
// opening under another's key.
func (k MFAKeys) aeadFor(purpose string, version int) (cipher.AEAD, error) {
	secret, ok := k.Secrets[version]
	if !ok {
		return nil, fmt.Errorf("no MFA key of version %d (MFA_PREVIOUS_KEYS)", version)
	}
	material := secret
	if purpose != "" {
		material = append([]byte(product.CryptoContext+" "+purpose+"\x00"), secret...)
	}
	sum := sha256.Sum256(material)
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// The user id is authenticated data: a secret moved to another row does
// not decrypt.
func (k MFAKeys) seal(plain string, userID uuid.UUID) (string, error) {
	return k.sealFor("", plain, userID[:])
}

func (k MFAKeys) open(sealed string, version int, userID uuid.UUID) (string, error) {
	return k.openFor("", sealed, version, userID[:])
}

// sealFor encrypts plain for purpose under the current key, bound to
// aad: base64 of nonce and ciphertext.
func (k MFAKeys) sealFor(purpose, plain string, aad []byte) (string, error) {
	g, err := k.aeadFor(purpose, k.Current)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(g.Seal(nonce, nonce, []byte(plain), aad)), nil
}

// openFor decrypts what sealFor made under key version.
func (k MFAKeys) openFor(purpose, sealed string, version int, aad []byte) (string, error) {
	g, err := k.aeadFor(purpose, version)
	if err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < g.NonceSize() {
		return "", errors.New("malformed ciphertext")
	}
	plain, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], aad)
	return string(plain), err
}
