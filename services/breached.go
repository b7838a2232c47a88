package services

import (
	_ "embed"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

//go:embed common-passwords.txt
var commonPasswordsFile string

// commonPasswords is the embedded list, as a set.
var commonPasswords = func() map[string]struct{} {
	set := make(map[string]struct{}, 10_000)
	for _, line := range strings.Split(commonPasswordsFile, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			set[line] = struct{}{}
		}
	}
	return set
}()

// IsCommonPassword reports whether p is among the 10,000 most common
// passwords of leaked corpora: the first guesses of every attacker,
// whatever the policy's character classes say ("Password123"). It compares
// the password as an attacker's list would match it: NFKC (full-width and
// other compatibility forms as plain letters), case and spaces ignored, so
// " Password123" and "Ｐａｓｓｗｏｒｄ123" are caught too.
func IsCommonPassword(p string) bool {
	p = strings.ToLower(norm.NFKC.String(p))
	p = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, p)
	_, ok := commonPasswords[p]
	return ok
}
