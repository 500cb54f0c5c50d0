package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/nova-auth/nova-auth/service/internal/store"
)

// key names one entry: a user id (kind 'u') or a canonical email ('e').
type key struct {
	kind  byte
	id    uuid.UUID
	email string
}

func userKey(id uuid.UUID) key { return key{kind: 'u', id: id} }
func emailKey(e string) key    { return key{kind: 'e', email: e} }

// tri is a yes/no answer that may not be known yet.
type tri int8

const (
	unknown tri = iota
	yes
	no
)

// entry is what is known about one key. A user-id entry gathers every read
// of that user (record, existence, permission answers, permission list), so
// that one eviction by id drops all of them together.
type entry struct {
	key     key
	expires int64 // unix nanoseconds
	exists  tri
	user    *store.User     // nil until read
	perms   map[string]bool // CheckPermission answers
	list    []string        // GetUserPermissions; nil until read
	listOK  bool
	size    int
	prev    *entry
	next    *entry
}

// entryOverhead approximates an entry's own bytes and its map slot.
const entryOverhead = 256

func (e *entry) resize() {
	n := entryOverhead + len(e.key.email)
	if e.user != nil {
		n += 96 + len(e.user.Email) + len(e.user.Username)
	}
	for p := range e.perms {
		n += 48 + len(p)
	}
	for _, p := range e.list {
		n += 16 + len(p)
	}
	e.size = n
}

// Evictions are counted by why the entry went.
const (
	reasonInvalidated = iota // a notification (or this replica's own write) named it
	reasonFlushed            // the whole cache was dropped: resubscribe, "*", listener lost
	reasonExpired            // TTL or a lock that ended
	reasonSize               // room for a newer entry (entries or bytes bound)
	nReasons
)

var reasonNames = [nReasons]string{"invalidated", "flushed", "expired", "size"}

const (
	nShards  = 16
	nBuckets = 4096
)

// shard is one lock's worth of entries with its own LRU list (head = most
// recently used) and its share of the bounds.
type shard struct {
	mu       sync.Mutex
	m        map[key]*entry
	head     *entry
	tail     *entry
	bytes    int
	maxItems int
	maxBytes int
}

// lru is the bounded map under the cache, with the generations that keep a
// read that began before an eviction from inserting what it read.
type lru struct {
	seed   maphash.Seed
	shards [nShards]shard
	// gens[b] moves on every eviction by key of a key hashing to bucket b;
	// epoch moves on every flush. A reader notes both before it queries
	// PostgreSQL and may insert only if neither moved.
	gens    [nBuckets]atomic.Uint64
	epoch   atomic.Uint64
	evicted [nReasons]atomic.Uint64
	now     func() time.Time
}

func newLRU(maxItems, maxBytes int, now func() time.Time) *lru {
	l := &lru{seed: maphash.MakeSeed(), now: now}
	for i := range l.shards {
		s := &l.shards[i]
		s.m = make(map[key]*entry)
		s.maxItems = max(1, maxItems/nShards)
		s.maxBytes = max(entryOverhead*4, maxBytes/nShards)
	}
	return l
}

func (l *lru) hash(k key) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteByte(k.kind)
	h.Write(k.id[:])
	h.WriteString(k.email)
	return h.Sum64()
}

// ticket is what a reader notes before it queries: insert only if still
// current.
type ticket struct {
	epoch, gen uint64
	bucket     uint32
	shard      uint32
}

func (l *lru) ticket(k key) ticket {
	h := l.hash(k)
	t := ticket{bucket: uint32(h % nBuckets), shard: uint32((h >> 32) % nShards)}
	// Epoch before generation: a flush between the two loads is caught by
	// the epoch, an eviction by key by the generation.
	t.epoch = l.epoch.Load()
	t.gen = l.gens[t.bucket].Load()
	return t
}

// get calls f with the live entry for k under its shard's lock; false when
// there is none (or it has expired, which evicts it).
func (l *lru) get(k key, t ticket, f func(e *entry) bool) bool {
	s := &l.shards[t.shard]
	now := l.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		return false
	}
	if now >= e.expires {
		s.remove(e)
		l.evicted[reasonExpired].Add(1)
		return false
	}
	if !f(e) {
		return false
	}
	s.toFront(e)
	return true
}

// put merges what a read found into k's entry through f, unless an
// eviction of k (or a flush) happened since t was taken: then what the
// read found may predate the change, and it is dropped. expires caps the
// entry's life.
func (l *lru) put(k key, t ticket, expires time.Time, f func(e *entry)) {
	s := &l.shards[t.shard]
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the lock an eviction takes after moving the
	// generation: either this insert comes first and the eviction removes
	// it, or the generation has moved and it is not made.
	if l.epoch.Load() != t.epoch || l.gens[t.bucket].Load() != t.gen {
		return
	}
	e := s.m[k]
	if e == nil {
		e = &entry{key: k, expires: expires.UnixNano()}
		s.m[k] = e
		s.pushFront(e)
	} else {
		e.expires = min(e.expires, expires.UnixNano())
		s.bytes -= e.size
		s.toFront(e)
	}
	f(e)
	e.resize()
	s.bytes += e.size
	for (len(s.m) > s.maxItems || s.bytes > s.maxBytes) && s.tail != nil && s.tail != e {
		s.remove(s.tail)
		l.evicted[reasonSize].Add(1)
	}
}

// evict drops k and stops reads in flight from inserting it.
func (l *lru) evict(k key) {
	h := l.hash(k)
	l.gens[h%nBuckets].Add(1)
	s := &l.shards[(h>>32)%nShards]
	s.mu.Lock()
	if e := s.m[k]; e != nil {
		s.remove(e)
		l.evicted[reasonInvalidated].Add(1)
	}
	s.mu.Unlock()
}

// flush drops everything and stops every read in flight from inserting.
func (l *lru) flush() {
	l.epoch.Add(1)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n := len(s.m)
		clear(s.m)
		s.head, s.tail, s.bytes = nil, nil, 0
		s.mu.Unlock()
		l.evicted[reasonFlushed].Add(uint64(n))
	}
}

// stats returns the number of entries and their estimated bytes.
func (l *lru) stats() (items, bytes int) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		items += len(s.m)
		bytes += s.bytes
		s.mu.Unlock()
	}
	return items, bytes
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

func (s *shard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *shard) toFront(e *entry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.m, e.key)
	s.bytes -= e.size
}
