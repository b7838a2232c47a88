package services

import (
	"net/mail"
	"strings"
	"unicode"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// NormalizeEmail is how an address is compared and stored: trimmed,
// Unicode NFC (so composed and decomposed spellings are one address),
// lower case, and the domain in its IDNA ASCII form (UTS #46 mapping, so
// "Bücher.example", "bücher.example" and "xn--bcher-kva.example" are one).
func NormalizeEmail(email string) string {
	email = norm.NFC.String(strings.TrimSpace(email))
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return strings.ToLower(email)
	}
	local, domain := strings.ToLower(email[:at]), email[at+1:]
	if ascii, err := idna.Lookup.ToASCII(domain); err == nil {
		domain = ascii
	} else {
		domain = strings.ToLower(domain)
	}
	return local + "@" + domain
}

// CheckEmail reports a problem with an already-normalised address, or "".
// Beyond RFC 5322 it refuses address literals (a@[127.0.0.1]: mail to a
// bare IP, never a real user's), domains that are not valid IDNA, and
// parts that mix scripts (UTS #39's "highly restrictive" level: one script,
// or Latin with the Han-based sets of Japanese, Chinese and Korean), the
// look-alikes such as a Cyrillic "а" among Latin letters.
func CheckEmail(email string) string {
	const invalid = "must be a valid email address"
	addr, err := mail.ParseAddress(email)
	at := strings.LastIndexByte(email, '@')
	if err != nil || addr.Address != email || addr.Name != "" || len(email) > 254 || at < 1 {
		return invalid
	}
	local, domain := email[:at], email[at+1:]
	if strings.HasPrefix(domain, "[") {
		return "must name a domain, not an address literal"
	}
	if !strings.Contains(domain, ".") {
		return invalid
	}
	unicodeDomain, err := idna.Lookup.ToUnicode(domain)
	if err != nil || !isASCII(domain) {
		return "must have a valid domain name"
	}
	if !singleScript(local) || !singleScript(unicodeDomain) {
		return "must not mix writing systems (look-alike letters from another script)"
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// allowedMixes are the script sets UTS #39 allows together at its highly
// restrictive level, besides any one script alone.
var allowedMixes = [][]*unicode.RangeTable{
	{unicode.Latin, unicode.Han, unicode.Hiragana, unicode.Katakana},
	{unicode.Latin, unicode.Han, unicode.Bopomofo},
	{unicode.Latin, unicode.Han, unicode.Hangul},
}

// singleScript reports whether s keeps to one script (digits, punctuation
// and combining marks, Common and Inherited, go with any) or an allowed mix.
func singleScript(s string) bool {
	var used []*unicode.RangeTable
	for _, r := range s {
		if r < 0x80 && !unicode.IsLetter(r) {
			continue // ASCII digits and punctuation: Common
		}
		if unicode.Is(unicode.Common, r) || unicode.Is(unicode.Inherited, r) {
			continue
		}
		t := scriptOf(r)
		if t == nil {
			return false // unassigned: nothing to compare it with
		}
		known := false
		for _, u := range used {
			known = known || u == t
		}
		if !known {
			used = append(used, t)
		}
	}
	if len(used) <= 1 {
		return true
	}
	for _, mix := range allowedMixes {
		inMix := true
		for _, u := range used {
			found := false
			for _, m := range mix {
				found = found || m == u
			}
			inMix = inMix && found
		}
		if inMix {
			return true
		}
	}
	return false
}

// scriptOf is the Unicode script of r (Latin checked first: most addresses).
func scriptOf(r rune) *unicode.RangeTable {
	if unicode.Is(unicode.Latin, r) {
		return unicode.Latin
	}
	for _, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return t
		}
	}
	return nil
}
