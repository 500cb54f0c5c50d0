package tokens

import (
	"sync"
	"time"
)

// verifiedCache remembers tokens that verified, so a token presented again —
// the common case: one user's token checked by every service it calls —
// costs a map lookup instead of a signature check. Only valid tokens are
// kept; expiry is re-checked on every hit, and the keys never change while
// the process runs, so a hit is exactly what a fresh verification would say.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[string]Result
	max int
}

func newVerifiedCache(max int) *verifiedCache {
	if max <= 0 {
		return nil
	}
	return &verifiedCache{m: make(map[string]Result, max), max: max}
}

// get returns the cached result if the token is still unexpired at now
// (with leeway, as the parser checks it).
func (c *verifiedCache) get(token string, now time.Time, leeway time.Duration) (Result, bool) {
	if c == nil {
		return Result{}, false
	}
	c.mu.RLock()
	r, ok := c.m[token]
	c.mu.RUnlock()
	if !ok || !now.Before(r.ExpiresAt.Add(leeway)) {
		return Result{}, false
	}
	return r, true
}

func (c *verifiedCache) put(token string, r Result, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Full: drop what has expired; if that frees too little, drop
		// everything (Go's map order makes any subset as good as another).
		for k, v := range c.m {
			if !now.Before(v.ExpiresAt) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max*3/4 {
			clear(c.m)
		}
	}
	c.m[token] = r
}
