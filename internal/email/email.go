// Package email decides when two spellings of an address are one identity.
package email

import (
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Canonical is the form of an address that identity is decided on: the
// surrounding white space trimmed, Unicode NFC, then full case folding (and
// NFC again, since folding can leave a string unnormalised). It is computed
// here rather than by the database because lower() and comparison follow the
// database's collation: under C.UTF-8 "K" (Kelvin sign, U+212A) lowers to
// "k", under C "É" does not lower at all and an NFD "é" never equals an NFC
// one. The store keeps this form in users.email_canonical, unique among live
// users, and every path that writes or looks up an email goes through it.
func Canonical(s string) string {
	return norm.NFC.String(cases.Fold().String(norm.NFC.String(strings.TrimSpace(s))))
}

// Display is the address as the user gave it, less surrounding white space:
// what the store keeps in users.email and the API returns. Folding is for
// matching only; it can change an address (ß folds to ss), so it is never
// sent back.
func Display(s string) string { return strings.TrimSpace(s) }
