package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nova-auth/nova-auth/service/internal/store"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// TestEmailIdentityIndependentOfCollation: whether two spellings of an
// address are one user is decided in Go (trimmed, NFC, case-folded), so a
// database created with the C locale and one created with C.UTF-8 agree. Each
// case creates the first spelling, then looks up (over gRPC) and creates the
// second.
func TestEmailIdentityIndependentOfCollation(t *testing.T) {
	cases := []struct {
		name, first, second string
		same                bool
	}{
		// Under C.UTF-8, lower() maps the Kelvin sign to k; under C it does not.
		{"Kelvin sign K and k", "\u212Aate@example.com", "kate@example.com", true},
		// Under C, lower() leaves É alone.
		{"É and é", "Élodie@example.com", "élodie@example.com", true},
		// No collation makes NFC é (U+00E9) equal NFD e + U+0301.
		{"NFC and NFD", "\u00e9mile@example.com", "e\u0301mile@example.com", true},
		{"surrounding spaces", "  spaces@example.com \t", "spaces@example.com", true},
		{"ASCII case", "Upper@Example.COM", "upper@example.com", true},
		{"e is not é", "eloise@example.com", "éloise@example.com", false},
		{"k is not ĸ (kra)", "kim@example.com", "\u0138im@example.com", false},
		{"inner space is kept", "in ner@example.com", "inner@example.com", false},
	}
	for _, locale := range []string{"C", "C.UTF-8"} {
		t.Run(locale, func(t *testing.T) {
			ctx := context.Background()
			url, err := pg.CreateDatabaseLocale(ctx, fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1)), locale)
			if err != nil {
				t.Fatal(err)
			}
			e := start(t, url, nil, true)
			e.waitServing(t, true)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					id := e.user(t, tc.first, fmt.Sprintf("u%da", i))
					for _, lookup := range []string{tc.first, tc.second} {
						r, err := e.client.GetUserByEmail(ctx, &authpb.GetUserByEmailRequest{Email: lookup})
						if err != nil {
							t.Fatalf("GetUserByEmail(%q): %v", lookup, err)
						}
						wantFound := lookup == tc.first || tc.same
						if r.GetFound() != wantFound || (wantFound && r.GetUser().GetId() != id) {
							t.Fatalf("GetUserByEmail(%q) = found %v id %q; want found %v id %q",
								lookup, r.GetFound(), r.GetUser().GetId(), wantFound, id)
						}
						// The API returns the address as it was given, less
						// surrounding white space; folding is for matching.
						if wantFound && r.GetUser().GetEmail() != strings.TrimSpace(tc.first) {
							t.Errorf("GetUserByEmail(%q).email = %q, want %q", lookup, r.GetUser().GetEmail(), strings.TrimSpace(tc.first))
						}
					}
					_, err := e.st.CreateUser(ctx, store.NewUser{Email: tc.second, Username: fmt.Sprintf("u%db", i), PasswordHash: cheapHash})
					if tc.same && !errors.Is(err, store.ErrAlreadyExists) {
						t.Errorf("CreateUser(%q) after %q: %v, want ErrAlreadyExists", tc.second, tc.first, err)
					}
					if !tc.same && err != nil {
						t.Errorf("CreateUser(%q) after %q: %v, want a new user", tc.second, tc.first, err)
					}
				})
			}
		})
	}
}
