package tokens

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// strictClaims is Claims decoded the way RFC 7519 reads them, not the way
// encoding/json fills a struct: a claim counts only under its exact name
// (encoding/json would take "EXP" or "Sub" for exp and sub), and the dates
// must be JSON numbers (jwt.NumericDate alone also takes "1700000000", a
// string). Unknown claims are ignored, as RFC 7519 §4 asks.
type strictClaims Claims

// claimTypeError names a claim whose JSON type is wrong.
type claimTypeError struct{ name, want string }

func (e *claimTypeError) Error() string { return fmt.Sprintf("%s claim is not %s", e.name, e.want) }

func (c *strictClaims) UnmarshalJSON(b []byte) error {
	m := make(map[string]json.RawMessage, 8) // the claims Signer.Issue writes
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var err error
	for name, raw := range m {
		switch name {
		case "iss":
			err = claimString(name, raw, &c.Issuer)
		case "sub":
			err = claimString(name, raw, &c.Subject)
		case "jti":
			err = claimString(name, raw, &c.ID)
		case "email":
			err = claimString(name, raw, &c.Email)
		case "aud":
			if json.Unmarshal(raw, &c.Audience) != nil {
				err = &claimTypeError{name, "a string or an array of strings"}
			}
		case "exp":
			c.ExpiresAt, err = claimDate(name, raw)
		case "nbf":
			c.NotBefore, err = claimDate(name, raw)
		case "iat":
			c.IssuedAt, err = claimDate(name, raw)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func claimString(name string, raw json.RawMessage, dst *string) error {
	// A JSON null would decode to "" without error; it is not a string.
	if len(raw) < 2 || raw[0] != '"' {
		return &claimTypeError{name, "a string"}
	}
	// The common case, no escapes, without a second pass through
	// encoding/json (raw is a valid JSON string: the map decode checked it).
	if in := raw[1 : len(raw)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		*dst = string(in)
		return nil
	}
	if json.Unmarshal(raw, dst) != nil {
		return &claimTypeError{name, "a string"}
	}
	return nil
}

// claimDate decodes a NumericDate that must be a JSON number (raw is valid
// JSON: the map decode checked it, so a leading digit or minus sign means a
// number). Fractions are kept, as jwt.NumericDate keeps them.
func claimDate(name string, raw json.RawMessage) (*jwt.NumericDate, error) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return nil, &claimTypeError{name, "a number"}
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > maxNumericDate {
		return nil, &claimTypeError{name, "a date in seconds since 1970"}
	}
	sec, frac := math.Modf(f)
	return jwt.NewNumericDate(time.Unix(int64(sec), int64(frac*1e9))), nil
}

// maxNumericDate keeps a date's seconds, and exp - iat, far from int64
// overflow (year 33658).
const maxNumericDate = 1 << 40

// shortDuration prints 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}
