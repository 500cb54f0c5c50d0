package cache

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nova-auth/nova-auth/service/internal/tracing"
)

// The cached operations, as the metrics name them (the store's method).
const (
	opGetUser = iota
	opGetUsersByIDs
	opUserExists
	opGetUserByEmail
	opHasPermission
	opPermissions
	opListUsers
	nOps
)

var opNames = [nOps]string{"GetUser", "GetUsersByIDs", "UserExists", "GetUserByEmail", "HasPermission", "Permissions", "ListUsers"}

// What a read found: answered from memory, read from PostgreSQL (and
// cached), or read from PostgreSQL with the cache off (listener down).
const (
	resHit = iota
	resMiss
	resBypass
	nResults
)

var resultNames = [nResults]string{"hit", "miss", "bypass"}

// counters are plain atomics on the hot path, read by the collector at
// scrape time.
type counters struct {
	reads         [nOps][nResults]atomic.Uint64
	notifications atomic.Uint64
	subscribes    atomic.Uint64
}

func (s *counters) count(op, res int) { s.reads[op][res].Add(1) }

// count counts a read and says on the call's span, when it records,
// whether the cache answered.
func (c *Cache) count(ctx context.Context, op, res int) {
	c.stats.count(op, res)
	tracing.CacheResult(ctx, resultNames[res])
}

// Hits and Misses total the reads answered from memory and those that went
// to PostgreSQL with the cache on.
func (c *Cache) Hits() uint64   { return c.sum(resHit) }
func (c *Cache) Misses() uint64 { return c.sum(resMiss) }

func (c *Cache) sum(res int) uint64 {
	var n uint64
	for op := range c.stats.reads {
		n += c.stats.reads[op][res].Load()
	}
	return n
}

// Up reports whether the listener is subscribed, i.e. the cache is in use.
func (c *Cache) Up() bool { return c.up.Load() }

var (
	descReads = prometheus.NewDesc("nova_auth_cache_reads_total",
		"Cached reads by store operation and result: hit (from memory), miss (from PostgreSQL, then cached), bypass (from PostgreSQL, cache off while its listener is down).",
		[]string{"op", "result"}, nil)
	descEvictions = prometheus.NewDesc("nova_auth_cache_evictions_total",
		"Entries dropped, by reason: invalidated (a change notified), flushed (resubscribe, bulk change, listener lost), expired (CACHE_TTL or a lock that ended), size (CACHE_SIZE or CACHE_MAX_BYTES).",
		[]string{"reason"}, nil)
	descEntries       = prometheus.NewDesc("nova_auth_cache_entries", "Entries in the cache.", nil, nil)
	descBytes         = prometheus.NewDesc("nova_auth_cache_bytes", "Estimated bytes the cache holds (bounded by CACHE_MAX_BYTES).", nil, nil)
	descUp            = prometheus.NewDesc("nova_auth_cache_listener_up", "1 while the replica LISTENs for changes and serves reads from the cache; 0 while every read goes to PostgreSQL.", nil, nil)
	descNotifications = prometheus.NewDesc("nova_auth_cache_notifications_total", "Change notifications received.", nil, nil)
	descSubscribes    = prometheus.NewDesc("nova_auth_cache_subscribes_total", "Times the listener (re)subscribed, each starting from an empty cache.", nil, nil)
)

// newDelayHistogram is nova_auth_cache_notify_delay_seconds: from a
// change's trigger firing in PostgreSQL (its clock) to this replica having
// evicted what the notification names (this host's clock).
func newDelayHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "nova_auth_cache_notify_delay_seconds",
		Help:    "From a change's trigger firing in PostgreSQL (its clock_timestamp) to this replica having evicted what its notification names (this host's clock; assumes the two agree). Flushes are not measured.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
}

// Describe implements prometheus.Collector.
func (c *Cache) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReads, descEvictions, descEntries, descBytes, descUp, descNotifications, descSubscribes} {
		ch <- d
	}
	c.delay.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Cache) Collect(ch chan<- prometheus.Metric) {
	for op := range c.stats.reads {
		for res := range c.stats.reads[op] {
			ch <- prometheus.MustNewConstMetric(descReads, prometheus.CounterValue,
				float64(c.stats.reads[op][res].Load()), opNames[op], resultNames[res])
		}
	}
	for r := range c.l.evicted {
		ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(c.l.evicted[r].Load()), reasonNames[r])
	}
	items, bytes := c.l.stats()
	ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(items))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(bytes))
	up := 0.0
	if c.up.Load() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(c.stats.notifications.Load()))
	ch <- prometheus.MustNewConstMetric(descSubscribes, prometheus.CounterValue, float64(c.stats.subscribes.Load()))
	c.delay.Collect(ch)
}
