package tokens

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MaxTokenBytes bounds the work an untrusted token can cause.
const MaxTokenBytes = 8 << 10

// Claims are the JWT claims the platform's tokens carry.
type Claims struct {
	Email string `json:"email,omitempty"`
	jwt.RegisteredClaims
}

// VerifierOptions are the checks beyond the signature.
type VerifierOptions struct {
	// Algorithms allowed; keys of other types are refused at start.
	Algorithms []string
	Issuer     string // checked when set
	Audience   string // checked when set
	Leeway     time.Duration
	Now        func() time.Time // for tests; time.Now by default
	// CacheSize bounds how many verified tokens are remembered; 0 disables
	// the cache.
	CacheSize int
}

// Verifier checks tokens against a fixed set of public keys.
type Verifier struct {
	keys   []verifyKey
	parser *jwt.Parser
	cache  *verifiedCache
	leeway time.Duration
	now    func() time.Time
}

type verifyKey struct {
	alg string
	kid string
	pub crypto.PublicKey
}

// Result is what VerifyToken reports. Reason is a short, client-safe
// explanation when Valid is false.
type Result struct {
	Valid     bool
	UserID    string
	Email     string
	ExpiresAt time.Time
	Reason    string
}

// NewVerifier builds a verifier; every key must be of an allowed algorithm.
func NewVerifier(keys []crypto.PublicKey, o VerifierOptions) (*Verifier, error) {
	if len(o.Algorithms) == 0 {
		return nil, errors.New("no JWT algorithm allowed")
	}
	v := &Verifier{cache: newVerifiedCache(o.CacheSize), leeway: o.Leeway, now: o.Now}
	if v.now == nil {
		v.now = time.Now
	}
	for i, k := range keys {
		alg, err := algorithmFor(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if !slices.Contains(o.Algorithms, alg) {
			return nil, fmt.Errorf("key %d is a %s key but JWT_ALGORITHMS allows only %s", i+1, alg, strings.Join(o.Algorithms, ","))
		}
		kid, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, verifyKey{alg: alg, kid: kid, pub: k})
	}
	if len(v.keys) == 0 {
		return nil, errors.New("no public key configured")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(o.Algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	if o.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(o.Now))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

var errUnknownKey = errors.New("unknown signing key")

// keyFor picks the keys a token may be signed with: those of its algorithm,
// narrowed to the one its kid names when it names one we have.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for _, k := range v.keys {
		if k.alg != alg {
			continue
		}
		if kid != "" && k.kid == kid {
			return k.pub, nil
		}
		set.Keys = append(set.Keys, k.pub)
	}
	if len(set.Keys) == 0 {
		return nil, errUnknownKey
	}
	if len(set.Keys) == 1 {
		return set.Keys[0], nil
	}
	return set, nil
}

// Verify checks a token. Failures are reported in Result, not as errors:
// an invalid token is an answer, not a fault.
func (v *Verifier) Verify(token string) Result {
	if len(token) > MaxTokenBytes {
		return Result{Reason: fmt.Sprintf("token longer than %d bytes", MaxTokenBytes)}
	}
	now := v.now()
	if r, ok := v.cache.get(token, now, v.leeway); ok {
		return r
	}
	var c Claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.keyFor); err != nil {
		return Result{Reason: reason(err)}
	}
	sub, err := uuid.Parse(c.Subject)
	if err != nil {
		return Result{Reason: "subject (sub) is not a user id"}
	}
	// The canonical form, whatever spelling the issuer used.
	r := Result{Valid: true, UserID: sub.String(), Email: c.Email, ExpiresAt: c.ExpiresAt.Time}
	v.cache.put(token, r, now)
	return r
}

// reason turns a parse failure into a short, client-safe phrase.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		return "signing algorithm not allowed"
	case errors.Is(err, errUnknownKey):
		return "no configured key matches the token's algorithm"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid signature"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no expiry (exp)"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token cannot be verified"
	}
	return "invalid token"
}
