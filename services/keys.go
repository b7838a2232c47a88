package services

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
)

// KeyBits is the RSA key size Tollgate generates and accepts at minimum.
const KeyBits = 2048

// KeySet is the signing key plus every public key whose tokens are still
// accepted, indexed by kid (the key's RFC 7638 thumbprint). Keeping a
// retired public key here lets tokens it signed live out their lifetime
// after a rotation.
type KeySet struct {
	signing    *rsa.PrivateKey
	signingKID string
	public     map[string]*rsa.PublicKey
	order      []string
}

// LoadKeySet reads the private key, its public key and any previous public keys.
func LoadKeySet(privateFile, publicFile string, previousPublicFiles []string) (*KeySet, error) {
	priv, err := readPrivateKey(privateFile)
	if err != nil {
		return nil, err
	}
	pub, err := readPublicKey(publicFile)
	if err != nil {
		return nil, err
	}
	if pub.N.Cmp(priv.N) != 0 || pub.E != priv.E {
		return nil, fmt.Errorf("%s is not the public half of %s", publicFile, privateFile)
	}
	ks := &KeySet{signing: priv, public: map[string]*rsa.PublicKey{}}
	ks.signingKID = ks.add(pub)
	for _, f := range previousPublicFiles {
		if f == "" {
			continue
		}
		p, err := readPublicKey(f)
		if err != nil {
			return nil, err
		}
		ks.add(p)
	}
	return ks, nil
}

func (ks *KeySet) add(pub *rsa.PublicKey) string {
	kid := Thumbprint(pub)
	if _, ok := ks.public[kid]; !ok {
		ks.public[kid] = pub
		ks.order = append(ks.order, kid)
	}
	return kid
}

// SigningKID is the kid of the current signing key.
func (ks *KeySet) SigningKID() string { return ks.signingKID }

// PublicKey returns the key for kid.
func (ks *KeySet) PublicKey(kid string) (*rsa.PublicKey, bool) {
	k, ok := ks.public[kid]
	return k, ok
}

// JWK is one JSON Web Key (RFC 7517) for an RSA signing key.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns every accepted public key, the signing key first.
func (ks *KeySet) JWKS() JWKS {
	out := JWKS{Keys: make([]JWK, 0, len(ks.order))}
	for _, kid := range ks.order {
		n, e := rsaComponents(ks.public[kid])
		out.Keys = append(out.Keys, JWK{Kty: "RSA", Kid: kid, Use: "sig", Alg: "RS256", N: n, E: e})
	}
	return out
}

func rsaComponents(pub *rsa.PublicKey) (n, e string) {
	enc := base64.RawURLEncoding
	return enc.EncodeToString(pub.N.Bytes()), enc.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
}

// Thumbprint is the RFC 7638 JWK thumbprint of an RSA public key: SHA-256
// over the required members in lexicographic order, base64url-encoded.
func Thumbprint(pub *rsa.PublicKey) string {
	n, e := rsaComponents(pub)
	canonical, _ := json.Marshal(struct {
		E   string `json:"e"`
		Kty string `json:"kty"`
		N   string `json:"n"`
	}{e, "RSA", n})
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ErrKeysExist is returned by GenerateKeyPair when it would overwrite keys.
var ErrKeysExist = errors.New("key files already exist")

// GenerateKeyPair writes a new RSA-2048 pair; it refuses to overwrite
// existing files unless force is set. The private key is written 0600.
func GenerateKeyPair(privateFile, publicFile string, force bool) error {
	if !force {
		for _, f := range []string{privateFile, publicFile} {
			if _, err := os.Stat(f); err == nil {
				return fmt.Errorf("%w: %s (use --force to replace it)", ErrKeysExist, f)
			}
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	for _, f := range []string{privateFile, publicFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(privateFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(publicFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

func readPEM(file string) (*pem.Block, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("read key %s: no PEM block", file)
	}
	return block, nil
}

func readPrivateKey(file string) (*rsa.PrivateKey, error) {
	block, err := readPEM(file)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key %s: %w", file, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s is not an RSA private key", file)
	}
	if rk.N.BitLen() < KeyBits {
		return nil, fmt.Errorf("%s: RSA key is %d bits, need at least %d", file, rk.N.BitLen(), KeyBits)
	}
	return rk, nil
}

func readPublicKey(file string) (*rsa.PublicKey, error) {
	block, err := readPEM(file)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse public key %s: %w", file, err)
	}
	rk, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s is not an RSA public key", file)
	}
	return rk, nil
}
