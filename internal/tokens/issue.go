package tokens

import (
	"crypto"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Signer issues tokens with the claims Verifier checks.
type Signer struct {
	key      crypto.Signer
	method   jwt.SigningMethod
	kid      string
	issuer   string
	audience string
	now      func() time.Time
}

// NewSigner builds a signer for key; iss and aud are set when non-empty.
func NewSigner(key crypto.Signer, issuer, audience string) (*Signer, error) {
	alg, err := algorithmFor(key.Public())
	if err != nil {
		return nil, err
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, method: jwt.GetSigningMethod(alg), kid: kid, issuer: issuer, audience: audience, now: time.Now}, nil
}

// Issue signs a token for the user, valid for ttl.
func (s *Signer) Issue(userID, email string, ttl time.Duration) (string, time.Time, error) {
	now := s.now().Truncate(time.Second)
	exp := now.Add(ttl)
	c := Claims{
		Email: email,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        uuid.NewString(),
		},
	}
	if s.audience != "" {
		c.Audience = jwt.ClaimStrings{s.audience}
	}
	t := jwt.NewWithClaims(s.method, c)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.key)
	return signed, exp, err
}
