package services

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanText makes s safe to store in any database: invalid UTF-8 becomes
// U+FFFD, NUL and other control characters are dropped (PostgreSQL refuses
// NUL in text), and it is cut to at most n bytes on a rune boundary.
func CleanText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
