package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nova-auth/nova-auth/service/internal/store"
)

// fakeStore is an in-memory backend that counts its calls; hook, when set,
// runs inside GetUser after the value is read (to interleave an eviction).
type fakeStore struct {
	mu    sync.Mutex
	users map[uuid.UUID]store.User
	perms map[uuid.UUID][]string
	err   error
	calls atomic.Int64
	hook  func()
}

func newFake() *fakeStore {
	return &fakeStore{users: map[uuid.UUID]store.User{}, perms: map[uuid.UUID][]string{}}
}

func (f *fakeStore) set(u store.User) {
	f.mu.Lock()
	f.users[u.ID] = u
	f.mu.Unlock()
}

func (f *fakeStore) GetUser(_ context.Context, id uuid.UUID) (store.User, error) {
	f.calls.Add(1)
	f.mu.Lock()
	u, ok := f.users[id]
	err := f.err
	f.mu.Unlock()
	if f.hook != nil {
		f.hook()
	}
	if err != nil {
		return store.User{}, err
	}
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return u, nil
}

func (f *fakeStore) GetUsersByIDs(ctx context.Context, ids []uuid.UUID) ([]store.User, error) {
	var out []store.User
	seen := map[uuid.UUID]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		u, err := f.GetUser(ctx, id)
		if err == nil {
			out = append(out, u)
		}
	}
	return out, nil
}

func (f *fakeStore) UserExists(ctx context.Context, id uuid.UUID) (bool, error) {
	_, err := f.GetUser(ctx, id)
	return err == nil, nil
}

func (f *fakeStore) GetUserByEmail(context.Context, string) (store.User, error) {
	return store.User{}, store.ErrNotFound
}

func (f *fakeStore) ListUsers(context.Context, int32, int32, *store.UserKey) ([]store.User, int64, error) {
	return nil, 0, nil
}

func (f *fakeStore) HasPermission(ctx context.Context, id uuid.UUID, p string) (bool, error) {
	if _, err := f.GetUser(ctx, id); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.perms[id] {
		if q == p {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeStore) Permissions(ctx context.Context, id uuid.UUID) ([]string, error) {
	if _, err := f.GetUser(ctx, id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.perms[id]...), nil
}

func (f *fakeStore) RecordFailedLogin(context.Context, uuid.UUID, int, time.Duration) (store.LoginFailure, error) {
	return store.LoginFailure{}, nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestCache(b Backend, o Options) *Cache {
	if o.MaxEntries == 0 {
		o.MaxEntries = 1000
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 1 << 20
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	c := New(b, o, quiet)
	c.Subscribed()
	return c
}

func notifyIDs(ids ...uuid.UUID) string {
	s := `{"u":[`
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += `"` + id.String() + `"`
	}
	return s + `],"e":[]}`
}

// oneUser is a cache, subscribed, in front of a fake holding one user.
func oneUser(name string) (*fakeStore, *Cache, uuid.UUID) {
	f := newFake()
	id := uuid.New()
	f.set(store.User{ID: id, Username: name})
	return f, newTestCache(f, Options{}), id
}

// TestHitThenEvict: a second read is answered from memory; a notification
// naming the user makes the next read see the new value.
func TestHitThenEvict(t *testing.T) {
	f, c, id := oneUser("a")
	for range 3 {
		if u, err := c.GetUser(ctx, id); err != nil || u.Username != "a" {
			t.Fatalf("GetUser = %+v, %v", u, err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("backend read %d times for 3 GetUser, want 1", n)
	}
	f.set(store.User{ID: id, Username: "b"})
	c.Notify(notifyIDs(id))
	if u, _ := c.GetUser(ctx, id); u.Username != "b" {
		t.Fatalf("after the notification GetUser says %q, want b", u.Username)
	}
}

// TestReadBeforeEvictionNotCached: a read that fetched the old value before
// a change was notified must not insert it after the notification.
func TestReadBeforeEvictionNotCached(t *testing.T) {
	f, c, id := oneUser("old")
	var once sync.Once
	f.hook = func() {
		// The read has its (old) value; the change commits and is heard
		// before the read returns.
		once.Do(func() {
			f.mu.Lock()
			f.users[id] = store.User{ID: id, Username: "new"}
			f.mu.Unlock()
			c.Notify(notifyIDs(id))
		})
	}
	if u, _ := c.GetUser(ctx, id); u.Username != "old" {
		t.Fatalf("first read %q, want old (read before the change)", u.Username)
	}
	if u, _ := c.GetUser(ctx, id); u.Username != "new" {
		t.Fatalf("second read %q: the read that began before the eviction cached its stale value", u.Username)
	}
	// The same for a flush ("*").
	once = sync.Once{}
	f.hook = func() {
		once.Do(func() {
			f.mu.Lock()
			f.users[id] = store.User{ID: id, Username: "newer"}
			f.mu.Unlock()
			c.Notify("*")
		})
	}
	c.Notify(notifyIDs(id))
	c.GetUser(ctx, id) //nolint:errcheck
	f.hook = nil
	if u, _ := c.GetUser(ctx, id); u.Username != "newer" {
		t.Fatalf("after a flush during a read: %q, want newer", u.Username)
	}
}

// TestLockEndsInCache: a cached lock is not served past its locked_until.
func TestLockEndsInCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	f := newFake()
	id := uuid.New()
	f.set(store.User{ID: id, FailedLoginAttempts: 5, LockedUntil: now.Add(time.Minute)})
	c := newTestCache(f, Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx := context.Background()
	if u, _ := c.GetUser(ctx, id); u.LockedUntil.IsZero() {
		t.Fatal("not locked at first")
	}
	// PostgreSQL stops reporting the lock once it has passed.
	f.set(store.User{ID: id, FailedLoginAttempts: 5})
	clock.Store(now.Add(59 * time.Second).UnixNano())
	if u, _ := c.GetUser(ctx, id); u.LockedUntil.IsZero() {
		t.Fatal("lock gone from the cache before it ended")
	}
	clock.Store(now.Add(time.Minute).UnixNano())
	if u, _ := c.GetUser(ctx, id); !u.LockedUntil.IsZero() {
		t.Fatalf("cache still says locked until %v at %v", u.LockedUntil, time.Unix(0, clock.Load()).UTC())
	}
}

// TestOffWhileNotListening: before the listener subscribes and after it is
// lost, every read goes to the backend and nothing is kept.
func TestOffWhileNotListening(t *testing.T) {
	f := newFake()
	id := uuid.New()
	f.set(store.User{ID: id, Username: "a"})
	c := New(f, Options{MaxEntries: 100, MaxBytes: 1 << 20, TTL: time.Hour}, quiet)
	ctx := context.Background()
	c.GetUser(ctx, id) //nolint:errcheck
	c.GetUser(ctx, id) //nolint:errcheck
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("before Subscribed: %d backend reads for 2 GetUser, want 2", n)
	}
	c.Subscribed()
	c.GetUser(ctx, id) //nolint:errcheck
	c.GetUser(ctx, id) //nolint:errcheck
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("subscribed: %d backend reads in all, want 3", n)
	}
	c.Lost(errors.New("connection reset"))
	f.set(store.User{ID: id, Username: "b"})
	if u, _ := c.GetUser(ctx, id); u.Username != "b" {
		t.Fatalf("listener lost: served %q from the cache", u.Username)
	}
	c.Subscribed()
	if u, _ := c.GetUser(ctx, id); u.Username != "b" {
		t.Fatalf("after resubscribing: %q, want b (the cache starts empty)", u.Username)
	}
}

// TestErrorsNotCached: only answers are cached; a failed read is retried.
func TestErrorsNotCached(t *testing.T) {
	f := newFake()
	id := uuid.New()
	f.set(store.User{ID: id})
	f.err = fmt.Errorf("%w: down", store.ErrUnavailable)
	c := newTestCache(f, Options{})
	ctx := context.Background()
	for range 2 {
		if _, err := c.GetUser(ctx, id); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	}
	f.err = nil
	if _, err := c.GetUser(ctx, id); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("%d backend reads, want 3 (errors are not cached)", n)
	}
	// Not found is an answer: cached, and the id's creation evicts it.
	other := uuid.New()
	for range 2 {
		if _, err := c.GetUser(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err %v, want ErrNotFound", err)
		}
	}
	if n := f.calls.Load(); n != 4 {
		t.Fatalf("%d backend reads, want 4 (not found cached)", n)
	}
	f.set(store.User{ID: other})
	c.Notify(notifyIDs(other))
	if _, err := c.GetUser(ctx, other); err != nil {
		t.Fatalf("created user still not found: %v", err)
	}
}

// TestBounded: the cache holds at most its entries and bytes.
func TestBounded(t *testing.T) {
	f := newFake()
	c := newTestCache(f, Options{MaxEntries: 160, MaxBytes: 64 << 10})
	ctx := context.Background()
	for i := range 5000 {
		id := uuid.New()
		f.set(store.User{ID: id, Username: fmt.Sprintf("user%d", i), Email: fmt.Sprintf("%0200d@x", i)})
		c.GetUser(ctx, id) //nolint:errcheck
	}
	items, bytes := c.l.stats()
	if items > 160 || bytes > 64<<10 {
		t.Fatalf("%d entries, %d bytes; bounds 160 and %d", items, bytes, 64<<10)
	}
	if c.l.evicted[reasonSize].Load() == 0 {
		t.Fatal("no eviction for size counted")
	}
}

// TestPermissions: answers and lists are cached per user and evicted with
// the user.
func TestPermissions(t *testing.T) {
	f := newFake()
	id := uuid.New()
	f.set(store.User{ID: id})
	f.perms[id] = []string{"a", "b"}
	c := newTestCache(f, Options{})
	ctx := context.Background()
	check := func(p string, want bool) {
		t.Helper()
		if has, err := c.HasPermission(ctx, id, p); err != nil || has != want {
			t.Fatalf("HasPermission(%s) = %v, %v; want %v", p, has, err, want)
		}
	}
	check("a", true)
	check("c", false)
	if l, _ := c.Permissions(ctx, id); len(l) != 2 {
		t.Fatalf("Permissions = %v", l)
	}
	before := f.calls.Load()
	check("a", true)
	check("b", true) // from the list
	check("c", false)
	if n := f.calls.Load() - before; n != 0 {
		t.Fatalf("%d backend reads for cached answers", n)
	}
	f.mu.Lock()
	f.perms[id] = []string{"c"}
	f.mu.Unlock()
	c.Notify(notifyIDs(id))
	check("a", false)
	check("c", true)
	if _, err := c.HasPermission(ctx, uuid.New(), "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v, want ErrNotFound", err)
	}
}
