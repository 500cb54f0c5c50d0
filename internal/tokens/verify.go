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
	// MaxTTL refuses tokens that live longer: exp - iat, or when the token
	// has no iat, exp - now (with the leeway for clock skew). 0: no limit.
	MaxTTL time.Duration
	Now    func() time.Time // for tests; time.Now by default
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
	maxTTL time.Duration
	now    func() time.Time
	// issuer and audience are kept to name a missing required claim.
	issuer, audience string
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
	// Cached: the answer came from the verified-token cache, with no
	// signature check.
	Cached bool
}

// NewVerifier builds a verifier; every key must be of an allowed algorithm.
func NewVerifier(keys []crypto.PublicKey, o VerifierOptions) (*Verifier, error) {
	if len(o.Algorithms) == 0 {
		return nil, errors.New("no JWT algorithm allowed")
	}
	v := &Verifier{cache: newVerifiedCache(o.CacheSize), leeway: o.Leeway, maxTTL: o.MaxTTL, now: o.Now,
		issuer: o.Issuer, audience: o.Audience}
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
		// One spelling per token: without it the unused low bits of each
		// segment's last base64 character give every token 16 or more
		// spellings that verify, each its own cache entry.
		jwt.WithStrictDecoding(),
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

var (
	errUnknownKey = errors.New("unknown signing key")
	errCritHeader = errors.New("crit header")
)

// keyFor picks the keys a token may be signed with: those of its algorithm,
// narrowed to the one its kid names when it names one we have.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	// RFC 7515 §4.1.11: a recipient that does not understand an extension
	// listed in crit must refuse the token, and we understand none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritHeader
	}
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
		r.Cached = true
		return r
	}
	// base64 decoding skips CR and LF, so each would make another spelling
	// of the same token; only the JWS compact alphabet is accepted.
	if !compactAlphabet(token) {
		return Result{Reason: "malformed token"}
	}
	var c strictClaims
	if _, err := v.parser.ParseWithClaims(token, &c, v.keyFor); err != nil {
		return Result{Reason: v.reason(err, &c)}
	}
	if c.Subject == "" {
		return Result{Reason: "token has no subject (sub)"}
	}
	if why := v.lifetimeTooLong(&c, now); why != "" {
		return Result{Reason: why}
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

// compactAlphabet reports whether s holds only base64url characters and dots.
func compactAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_', b == '.':
		default:
			return false
		}
	}
	return true
}

// lifetimeTooLong says why a token lives longer than MaxTTL, or "". Without
// iat the lifetime is unknown, so what remains of it (exp - now) must fit.
func (v *Verifier) lifetimeTooLong(c *strictClaims, now time.Time) string {
	if v.maxTTL <= 0 {
		return ""
	}
	exp := c.ExpiresAt.Time
	if c.IssuedAt != nil {
		if exp.Sub(c.IssuedAt.Time) > v.maxTTL {
			return fmt.Sprintf("token lifetime (exp - iat) exceeds the %s maximum", shortDuration(v.maxTTL))
		}
		return ""
	}
	if exp.Sub(now) > v.maxTTL+v.leeway {
		return fmt.Sprintf("token has no iat and expires more than %s from now, the maximum lifetime", shortDuration(v.maxTTL))
	}
	return ""
}

// missingClaim names the required claim c lacks, in the order the parser
// checks them.
func (v *Verifier) missingClaim(c *strictClaims) string {
	switch {
	case c.ExpiresAt == nil:
		return "expiry (exp)"
	case v.audience != "" && len(c.Audience) == 0:
		return "audience (aud)"
	case v.issuer != "" && c.Issuer == "":
		return "issuer (iss)"
	}
	return "required claim"
}

// reason turns a parse failure into a short, client-safe phrase.
func (v *Verifier) reason(err error, c *strictClaims) string {
	var typeErr *claimTypeError
	switch {
	case errors.As(err, &typeErr):
		return typeErr.Error()
	case errors.Is(err, errCritHeader):
		return "token has a crit header: no JWS extension is supported"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		return "signing algorithm not allowed"
	case errors.Is(err, errUnknownKey):
		return "no configured key matches the token's algorithm"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid signature"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no " + v.missingClaim(c)
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
