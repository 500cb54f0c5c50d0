package envconfig

import (
	"errors"
	"strconv"
	"strings"
)

// Bool stores a boolean in the forms strconv.ParseBool accepts (true, false,
// 1, 0, t, f …) in *dst.
func Bool(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("must be true or false")
	}
	*dst = b
	return nil
}

// List splits a comma-separated value into its items, trimmed, leaving out
// empty ones, so "a, b,," is [a b].
func List(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
