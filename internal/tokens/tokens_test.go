package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
	"testing"
	"time"
)

const userID = "3f1c2b7e-9d4a-4c1e-8b2f-6a5d4c3b2a10"

func keyPairs(t testing.TB) map[string]crypto.Signer {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, _, err := GenerateEd25519PEM()
	if err != nil {
		t.Fatal(err)
	}
	edk, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"RS256": rk, "ES256": ek, "EdDSA": edk}
}

func TestIssueVerifyEachAlgorithm(t *testing.T) {
	for alg, key := range keyPairs(t) {
		t.Run(alg, func(t *testing.T) {
			privPEM, pubPEM, err := MarshalPEM(key, key.Public())
			if err != nil {
				t.Fatal(err)
			}
			k, err := ParsePrivateKey(privPEM)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSigner(k, "iss", "aud")
			if err != nil {
				t.Fatal(err)
			}
			tok, exp, err := s.Issue(userID, "u@example.com", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			pubs, err := ParsePublicKeys(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewVerifier(pubs, VerifierOptions{Algorithms: []string{"RS256", "ES256", "EdDSA"}, Issuer: "iss", Audience: "aud"})
			if err != nil {
				t.Fatal(err)
			}
			r := v.Verify(tok)
			if !r.Valid || r.UserID != userID || r.Email != "u@example.com" || !r.ExpiresAt.Equal(exp) {
				t.Fatalf("%+v", r)
			}
			// The same key is refused when its algorithm is not allowed.
			others := []string{}
			for _, a := range []string{"RS256", "ES256", "EdDSA"} {
				if a != alg {
					others = append(others, a)
				}
			}
			if _, err := NewVerifier(pubs, VerifierOptions{Algorithms: others}); err == nil {
				t.Fatalf("a %s key was accepted with algorithms %v", alg, others)
			}
		})
	}
}

// TestKeyRotation: with two public keys configured, tokens from either verify;
// the kid picks the key, and a token without kid still finds it.
func TestKeyRotation(t *testing.T) {
	oldPriv, oldPub, _ := GenerateEd25519PEM()
	newPriv, newPub, _ := GenerateEd25519PEM()
	pubs, err := ParsePublicKeys(append(oldPub, newPub...))
	if err != nil || len(pubs) != 2 {
		t.Fatalf("keys=%d err=%v", len(pubs), err)
	}
	v, err := NewVerifier(pubs, VerifierOptions{Algorithms: []string{"EdDSA"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{oldPriv, newPriv} {
		k, _ := ParsePrivateKey(p)
		s, _ := NewSigner(k, "", "")
		tok, _, _ := s.Issue(userID, "", time.Minute)
		if r := v.Verify(tok); !r.Valid {
			t.Fatalf("rotation: %+v", r)
		}
	}
}

func TestParseKeysErrors(t *testing.T) {
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, smallPub, _ := MarshalPEM(smallRSA, smallRSA.Public())
	_, p384Pub, _ := MarshalPEM(p384, p384.Public())
	for _, tc := range []struct {
		name, pem, want string
	}{
		{"empty", "", "no PEM key found"},
		{"not pem", "hello", "no PEM key found"},
		{"rsa 1024", string(smallPub), "at least 2048"},
		{"p-384", string(p384Pub), "P-256"},
		{"wrong block", "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "not a key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKeys([]byte(tc.pem))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func newTestVerifier(t testing.TB) (*Verifier, *Signer) {
	return newVerifierWith(t, VerifierOptions{Algorithms: []string{"EdDSA"}, Issuer: "iss", Audience: "aud", Leeway: time.Second})
}

// newVerifierWith makes an Ed25519 key pair, a verifier with options o and a
// signer for the key that sets iss and aud as o checks them.
func newVerifierWith(t testing.TB, o VerifierOptions) (*Verifier, *Signer) {
	priv, pub, err := GenerateEd25519PEM()
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := ParsePublicKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(pubs, o)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ParsePrivateKey(priv)
	s, err := NewSigner(k, o.Issuer, o.Audience)
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

// FuzzVerify: no input makes Verify panic or call an invalid token valid.
func FuzzVerify(f *testing.F) {
	v, s := newTestVerifier(f)
	good, _, _ := s.Issue(userID, "u@example.com", time.Hour)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add(good[:len(good)-2])
	// Other spellings of good: the signature's last character (whose low
	// bits are unused) changed, and a line break, which base64 skips.
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		f.Add(good[:len(good)-1] + string(c))
	}
	f.Add(good[:10] + "\n" + good[10:])
	f.Fuzz(func(t *testing.T, tok string) {
		r := v.Verify(tok)
		// Strict decoding leaves one spelling per token: any other string
		// that verifies is a forgery or a second spelling of good.
		if r.Valid && tok != good {
			t.Fatalf("token other than the one issued accepted: %q -> %+v", tok, r)
		}
		if !r.Valid && r.Reason == "" {
			t.Fatalf("invalid token without a reason: %q", tok)
		}
	})
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	v, s := newTestVerifier(b)
	tok, _, _ := s.Issue(userID, "u@example.com", time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if !v.Verify(tok).Valid {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkVerifyAlgorithms(b *testing.B) {
	for alg, key := range keyPairs(b) {
		b.Run(alg, func(b *testing.B) {
			s, _ := NewSigner(key, "", "")
			v, _ := NewVerifier([]crypto.PublicKey{key.Public()}, VerifierOptions{Algorithms: []string{alg}})
			tok, _, _ := s.Issue(userID, "", time.Hour)
			b.ReportAllocs()
			for b.Loop() {
				if !v.Verify(tok).Valid {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// TestCacheRechecksExpiry: a cached token stops verifying when it expires,
// exactly as an uncached one does.
func TestCacheRechecksExpiry(t *testing.T) {
	priv, pub, _ := GenerateEd25519PEM()
	pubs, _ := ParsePublicKeys(pub)
	now := time.Now()
	clock := func() time.Time { return now }
	v, err := NewVerifier(pubs, VerifierOptions{Algorithms: []string{"EdDSA"}, Leeway: 2 * time.Second, Now: clock, CacheSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ParsePrivateKey(priv)
	s, _ := NewSigner(k, "", "")
	s.now = clock
	tok, exp, _ := s.Issue(userID, "", time.Minute)
	for range 2 { // miss, then hit
		if r := v.Verify(tok); !r.Valid {
			t.Fatalf("fresh token: %+v", r)
		}
	}
	now = exp.Add(time.Second) // inside the leeway
	if r := v.Verify(tok); !r.Valid {
		t.Fatalf("within leeway: %+v", r)
	}
	now = exp.Add(3 * time.Second)
	if r := v.Verify(tok); r.Valid || r.Reason != "token expired" {
		t.Fatalf("expired but cached: %+v", r)
	}
	// A tampered copy of a cached token is not a hit.
	now = exp.Add(-30 * time.Second)
	if r := v.Verify(tok + "x"); r.Valid {
		t.Fatal("tampered token verified")
	}
	// The cache stays bounded.
	for i := range 50 {
		tk, _, _ := s.Issue(userID, fmt.Sprint(i), time.Minute)
		v.Verify(tk)
	}
	if n := len(v.cache.m); n > 10 {
		t.Fatalf("cache holds %d entries, bound 10", n)
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	priv, pub, _ := GenerateEd25519PEM()
	pubs, _ := ParsePublicKeys(pub)
	v, _ := NewVerifier(pubs, VerifierOptions{Algorithms: []string{"EdDSA"}, CacheSize: 10000})
	k, _ := ParsePrivateKey(priv)
	s, _ := NewSigner(k, "", "")
	tok, _, _ := s.Issue(userID, "u@example.com", time.Hour)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !v.Verify(tok).Valid {
				b.Fatal("invalid")
			}
		}
	})
}
