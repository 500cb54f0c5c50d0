package email

import "testing"

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		same       bool
	}{
		{"Kelvin sign is K", "\u212Aate@example.com", "kate@example.com", true},
		{"Latin capital K", "Kate@example.com", "kate@example.com", true},
		{"É and é", "Élodie@example.com", "élodie@example.com", true},
		{"NFC and NFD", "\u00e9lodie@example.com", "e\u0301lodie@example.com", true},
		{"NFD capital and NFC small", "E\u0301lodie@example.com", "\u00e9lodie@example.com", true},
		{"surrounding spaces", "  kate@example.com\t\n", "kate@example.com", true},
		{"whole domain case", "kate@EXAMPLE.COM", "kate@example.com", true},
		{"different local part", "kate@example.com", "kat@example.com", false},
		{"inner space kept", "ka te@example.com", "kate@example.com", false},
		{"e is not é", "elodie@example.com", "élodie@example.com", false},
		{"K is not Kelvin-less k with stroke", "kate@example.com", "\u0138ate@example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := Canonical(tc.a), Canonical(tc.b)
			if (ca == cb) != tc.same {
				t.Errorf("Canonical(%q) = %q, Canonical(%q) = %q: same = %v, want %v", tc.a, ca, tc.b, cb, ca == cb, tc.same)
			}
			if Canonical(ca) != ca {
				t.Errorf("Canonical is not idempotent on %q: %q", ca, Canonical(ca))
			}
		})
	}
}

func TestDisplay(t *testing.T) {
	for in, want := range map[string]string{
		"  Kate@Example.com ": "Kate@Example.com",
		"Straße@example.com":  "Straße@example.com",
		"\t\n":                "",
	} {
		if got := Display(in); got != want {
			t.Errorf("Display(%q) = %q, want %q", in, got, want)
		}
	}
}
