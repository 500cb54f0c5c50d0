package cache

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nova-auth/nova-auth/service/internal/store"
)

// maxPages bounds the ListUsers pages kept; past it they are all dropped
// (a page is ~20 users, so this is a few MiB at most).
const maxPages = 1024

// listKey is one ListUsers request.
type listKey struct {
	limit, offset int32
	after         store.UserKey
	hasAfter      bool
}

type page struct {
	users   []store.User
	total   int64
	expires int64 // unix nanoseconds
}

// lists holds ListUsers pages. Any change to any user may move every page
// (and total_count), so every users notification drops them all; gen stops
// a read begun before that from inserting its page.
type lists struct {
	mu  sync.Mutex
	m   map[listKey]page
	gen atomic.Uint64
}

func (ls *lists) get(k listKey, now time.Time) (page, bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	p, ok := ls.m[k]
	if ok && now.UnixNano() >= p.expires {
		delete(ls.m, k)
		return page{}, false
	}
	return p, ok
}

// put keeps p unless the pages were dropped since gen was read (or the
// whole cache was flushed since epoch was): it returns how many pages it
// dropped for room.
func (ls *lists) put(k listKey, p page, gen, epoch uint64, curEpoch *atomic.Uint64) int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.gen.Load() != gen || curEpoch.Load() != epoch {
		return 0
	}
	dropped := 0
	if len(ls.m) >= maxPages {
		dropped = len(ls.m)
		clear(ls.m)
	}
	if ls.m == nil {
		ls.m = make(map[listKey]page)
	}
	ls.m[k] = p
	return dropped
}

// drop evicts every page and stops reads in flight from inserting theirs;
// it returns how many there were.
func (ls *lists) drop() int {
	ls.gen.Add(1)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n := len(ls.m)
	clear(ls.m)
	return n
}

// ListUsers is store.ListUsers from memory when this page was read since
// the last change to any user; a page whose user is locked is kept no
// longer than the lock.
func (c *Cache) ListUsers(ctx context.Context, limit, offset int32, after *store.UserKey) ([]store.User, int64, error) {
	if !c.enabled.Load() {
		c.count(ctx, opListUsers, resBypass)
		return c.b.ListUsers(ctx, limit, offset, after)
	}
	k := listKey{limit: limit, offset: offset}
	if after != nil {
		k.after, k.hasAfter = *after, true
	}
	epoch, gen := c.l.epoch.Load(), c.lists.gen.Load()
	if p, ok := c.lists.get(k, c.now()); ok {
		c.count(ctx, opListUsers, resHit)
		// The handler trims and converts the slice; it must not share ours.
		return slices.Clone(p.users), p.total, nil
	}
	c.count(ctx, opListUsers, resMiss)
	users, total, err := c.b.ListUsers(ctx, limit, offset, after)
	if err != nil {
		return users, total, err
	}
	exp := c.now().Add(c.ttl)
	for i := range users {
		exp = minTime(exp, c.expiry(&users[i]))
	}
	if n := c.lists.put(k, page{users: slices.Clone(users), total: total, expires: exp.UnixNano()}, gen, epoch, &c.l.epoch); n > 0 {
		c.l.evicted[reasonSize].Add(uint64(n))
	}
	return users, total, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
