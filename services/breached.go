package services

import (
	_ "embed"
	"strings"
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

// IsCommonPassword reports whether p, ignoring case, is among the 10,000
// most common passwords of leaked corpora: the first guesses of every
// attacker, whatever the policy's character classes say ("Password123").
func IsCommonPassword(p string) bool {
	_, ok := commonPasswords[strings.ToLower(p)]
	return ok
}
