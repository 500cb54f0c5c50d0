// Package cache keeps the user and permission reads in memory, consistent
// across replicas: PostgreSQL triggers notify every change (migration 0004),
// each replica LISTENs on one connection of its own and evicts what a
// notification names. While that connection is down, or not yet
// subscribed, every read goes to PostgreSQL; on (re)subscribing the cache
// starts empty. Reads that began before an eviction never insert what they
// read (lru.go's generations), and a cached lock ends when it says it ends.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nova-auth/nova-auth/internal/email"
	"github.com/nova-auth/nova-auth/service/internal/grpcserver"
	"github.com/nova-auth/nova-auth/service/internal/store"
)

// Backend is the store the cache reads through: what the handlers need.
type Backend = grpcserver.Store

var _ grpcserver.Store = (*Cache)(nil)

// Options bound the cache.
type Options struct {
	MaxEntries int
	MaxBytes   int
	// TTL caps any entry's life, a backstop for a change no trigger saw
	// (triggers disabled by an operator, session_replication_role).
	TTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Cache answers the cached reads from memory when it can and from the
// backend otherwise. It implements grpcserver.Store and store.Subscriber.
type Cache struct {
	b       Backend
	l       *lru
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	lists   lists
	enabled atomic.Bool
	up      atomic.Bool
	stats   counters
	// delay is nova_auth_cache_notify_delay_seconds.
	delay prometheus.Histogram
}

// New builds a cache in front of b, disabled until Subscribed.
func New(b Backend, o Options, log *slog.Logger) *Cache {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Cache{b: b, l: newLRU(o.MaxEntries, o.MaxBytes, now), ttl: o.TTL, now: now, log: log, delay: newDelayHistogram()}
}

// Subscribed: the LISTEN is in effect, so every commit from now on will be
// heard. What was cached before (if anything) may have missed changes:
// flush, then serve from the cache.
func (c *Cache) Subscribed() {
	c.flush()
	c.enabled.Store(true)
	c.up.Store(true)
	c.stats.subscribes.Add(1)
	c.log.Info("cache listening for changes: enabled")
}

// Lost: changes may go unheard from now on. Stop serving from the cache and
// stop reads in flight from filling it.
func (c *Cache) Lost(err error) {
	c.enabled.Store(false)
	c.flush()
	switch {
	case !c.up.Swap(false):
	case errors.Is(err, context.Canceled):
		c.log.Info("cache off: shutting down")
	default:
		c.log.Warn("cache listener lost: reads go to PostgreSQL until it resubscribes", slog.String("error", err.Error()))
	}
}

// notification is migration 0004's payload, stamped since 0006.
type notification struct {
	T string      `json:"t"` // the table
	U []uuid.UUID `json:"u"`
	E []string    `json:"e"`
	// TS is when the trigger fired, by PostgreSQL's clock, in
	// microseconds since the Unix epoch; 0 from a schema before 0006.
	TS int64 `json:"ts"`
}

// Notify evicts what a notification names; "*" or anything unreadable
// flushes everything.
func (c *Cache) Notify(payload string) {
	c.stats.notifications.Add(1)
	var n notification
	if payload == "*" || json.Unmarshal([]byte(payload), &n) != nil {
		c.flush()
		return
	}
	if n.T != "user_permissions" {
		c.l.evicted[reasonInvalidated].Add(uint64(c.lists.drop()))
	}
	for _, id := range n.U {
		c.l.evict(userKey(id))
	}
	for _, e := range n.E {
		c.l.evict(emailKey(e))
	}
	if n.TS != 0 {
		// The wall clocks of PostgreSQL and this host: a skew between them
		// shows here as it is, except that a negative delay counts as 0.
		c.delay.Observe(max(time.Since(time.UnixMicro(n.TS)).Seconds(), 0))
	}
}

// flush drops every entry and page and stops every read in flight from
// inserting.
func (c *Cache) flush() {
	c.l.flush()
	c.l.evicted[reasonFlushed].Add(uint64(c.lists.drop()))
}

// ticket notes the generation of k before a backend read; ok is false while
// the cache is off, and then nothing is read from or written to it.
func (c *Cache) ticket(k key) (ticket, bool) {
	if !c.enabled.Load() {
		return ticket{}, false
	}
	return c.l.ticket(k), true
}

// expiry is when an entry holding u stops being served: after the TTL, or
// when u's lock ends, since the lock is then no longer what PostgreSQL
// says.
func (c *Cache) expiry(u *store.User) time.Time {
	exp := c.now().Add(c.ttl)
	if u != nil && !u.LockedUntil.IsZero() && u.LockedUntil.Before(exp) {
		exp = u.LockedUntil
	}
	return exp
}

// GetUser is store.GetUser from memory when known (a user that is not
// there, too: a user's creation notifies its id).
func (c *Cache) GetUser(ctx context.Context, id uuid.UUID) (store.User, error) {
	return c.readUser(ctx, opGetUser, userKey(id), func() (store.User, error) { return c.b.GetUser(ctx, id) })
}

// userOf reads a user out of an entry; known is false when the entry holds
// other answers about the user but not the user.
func userOf(e *entry) (u store.User, found, known bool) {
	switch {
	case e.exists == no:
		return store.User{}, false, true
	case e.user != nil:
		return *e.user, true, true
	}
	return store.User{}, false, false
}

// readUser answers a read of one user (by id or by email) from k's entry,
// or from fetch, whose outcome it then caches.
func (c *Cache) readUser(ctx context.Context, op int, k key, fetch func() (store.User, error)) (store.User, error) {
	t, on := c.ticket(k)
	if !on {
		c.count(ctx, op, resBypass)
		return fetch()
	}
	var (
		u     store.User
		found bool
	)
	if c.l.get(k, t, func(e *entry) bool {
		var known bool
		u, found, known = userOf(e)
		return known
	}) {
		c.count(ctx, op, resHit)
		if !found {
			return store.User{}, store.ErrNotFound
		}
		return u, nil
	}
	c.count(ctx, op, resMiss)
	u, err := fetch()
	c.putUser(k, t, u, err)
	return u, err
}

// putUser records a user read's outcome: the user, or that there is none.
// Errors other than not-found are never cached.
func (c *Cache) putUser(k key, t ticket, u store.User, err error) {
	switch {
	case err == nil:
		c.l.put(k, t, c.expiry(&u), func(e *entry) {
			e.exists, e.user = yes, &u
		})
	case errors.Is(err, store.ErrNotFound):
		c.l.put(k, t, c.expiry(nil), func(e *entry) { setMissing(e) })
	}
}

func setMissing(e *entry) {
	e.exists, e.user, e.perms, e.list, e.listOK = no, nil, nil, nil, false
}

// GetUsersByIDs answers from memory the ids it knows and asks the backend
// for the others, in one query; the order and collapsing of duplicates is
// store.GetUsersByIDs's.
func (c *Cache) GetUsersByIDs(ctx context.Context, ids []uuid.UUID) ([]store.User, error) {
	if !c.enabled.Load() {
		c.count(ctx, opGetUsersByIDs, resBypass)
		return c.b.GetUsersByIDs(ctx, ids)
	}
	type slot struct {
		t     ticket
		known bool
		found bool
		u     store.User
	}
	slots := make(map[uuid.UUID]*slot, len(ids))
	var missing []uuid.UUID
	for _, id := range ids {
		if slots[id] != nil {
			continue
		}
		k := userKey(id)
		s := &slot{t: c.l.ticket(k)}
		slots[id] = s
		s.known = c.l.get(k, s.t, func(e *entry) bool {
			s.u, s.found, s.known = userOf(e)
			return s.known
		})
		if !s.known {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		c.count(ctx, opGetUsersByIDs, resHit)
	} else {
		c.count(ctx, opGetUsersByIDs, resMiss)
		got, err := c.b.GetUsersByIDs(ctx, missing)
		if err != nil {
			return nil, err
		}
		for _, u := range got {
			s := slots[u.ID]
			s.u, s.found = u, true
		}
		for _, id := range missing {
			s := slots[id]
			if s.found {
				c.putUser(userKey(id), s.t, s.u, nil)
			} else {
				c.putUser(userKey(id), s.t, store.User{}, store.ErrNotFound)
			}
		}
	}
	var out []store.User
	for _, id := range ids {
		s := slots[id]
		if s == nil {
			continue // a duplicate, already placed
		}
		if s.found {
			out = append(out, s.u)
		}
		delete(slots, id)
	}
	return out, nil
}

// UserExists is store.UserExists from memory when known.
func (c *Cache) UserExists(ctx context.Context, id uuid.UUID) (bool, error) {
	k := userKey(id)
	t, on := c.ticket(k)
	if !on {
		c.count(ctx, opUserExists, resBypass)
		return c.b.UserExists(ctx, id)
	}
	var ok bool
	if c.l.get(k, t, func(e *entry) bool {
		ok = e.exists == yes
		return e.exists != unknown
	}) {
		c.count(ctx, opUserExists, resHit)
		return ok, nil
	}
	c.count(ctx, opUserExists, resMiss)
	ok, err := c.b.UserExists(ctx, id)
	if err == nil {
		c.l.put(k, t, c.expiry(nil), func(e *entry) {
			if ok {
				e.exists = yes
			} else {
				setMissing(e)
			}
		})
	}
	return ok, err
}

// GetUserByEmail is store.GetUserByEmail from memory when known, keyed by
// the canonical email the store compares.
func (c *Cache) GetUserByEmail(ctx context.Context, addr string) (store.User, error) {
	return c.readUser(ctx, opGetUserByEmail, emailKey(email.Canonical(addr)), func() (store.User, error) {
		return c.b.GetUserByEmail(ctx, addr)
	})
}

// HasPermission is store.HasPermission from memory when known: the answer
// for this permission, the user's whole list, or that there is no user.
func (c *Cache) HasPermission(ctx context.Context, id uuid.UUID, permission string) (bool, error) {
	k := userKey(id)
	t, on := c.ticket(k)
	if !on {
		c.count(ctx, opHasPermission, resBypass)
		return c.b.HasPermission(ctx, id, permission)
	}
	var has, missing bool
	if c.l.get(k, t, func(e *entry) bool {
		switch {
		case e.exists == no:
			missing = true
		case e.listOK:
			has = slices.Contains(e.list, permission)
		default:
			var known bool
			has, known = e.perms[permission]
			return known
		}
		return true
	}) {
		c.count(ctx, opHasPermission, resHit)
		if missing {
			return false, store.ErrNotFound
		}
		return has, nil
	}
	c.count(ctx, opHasPermission, resMiss)
	has, err := c.b.HasPermission(ctx, id, permission)
	switch {
	case err == nil:
		c.l.put(k, t, c.expiry(nil), func(e *entry) {
			e.exists = yes
			if e.perms == nil {
				e.perms = make(map[string]bool)
			}
			e.perms[permission] = has
		})
	case errors.Is(err, store.ErrNotFound):
		c.l.put(k, t, c.expiry(nil), setMissing)
	}
	return has, err
}

// Permissions is store.Permissions from memory when known.
func (c *Cache) Permissions(ctx context.Context, id uuid.UUID) ([]string, error) {
	k := userKey(id)
	t, on := c.ticket(k)
	if !on {
		c.count(ctx, opPermissions, resBypass)
		return c.b.Permissions(ctx, id)
	}
	var (
		list    []string
		missing bool
	)
	if c.l.get(k, t, func(e *entry) bool {
		missing = e.exists == no
		list = slices.Clone(e.list)
		return missing || e.listOK
	}) {
		c.count(ctx, opPermissions, resHit)
		if missing {
			return nil, store.ErrNotFound
		}
		if list == nil {
			list = []string{}
		}
		return list, nil
	}
	c.count(ctx, opPermissions, resMiss)
	list, err := c.b.Permissions(ctx, id)
	switch {
	case err == nil:
		// Kept in the store's order (PostgreSQL's collation), which is
		// the order the API promises.
		kept := slices.Clone(list)
		c.l.put(k, t, c.expiry(nil), func(e *entry) {
			e.exists, e.list, e.listOK = yes, kept, true
		})
	case errors.Is(err, store.ErrNotFound):
		c.l.put(k, t, c.expiry(nil), setMissing)
	}
	return list, err
}

// RecordFailedLogin writes through, then evicts the user (and the pages,
// which show the failure count) here at once, so
// a caller reading this replica right after its own write sees it (the
// trigger's notification evicts it everywhere, this replica too).
func (c *Cache) RecordFailedLogin(ctx context.Context, id uuid.UUID, threshold int, lockFor time.Duration) (store.LoginFailure, error) {
	f, err := c.b.RecordFailedLogin(ctx, id, threshold, lockFor)
	k := userKey(id)
	var addr string
	c.l.get(k, c.l.ticket(k), func(e *entry) bool {
		if e.user != nil {
			addr = e.user.Email
		}
		return false
	})
	c.l.evict(k)
	c.lists.drop()
	if addr != "" {
		c.l.evict(emailKey(email.Canonical(addr)))
	}
	return f, err
}
