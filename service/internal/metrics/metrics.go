// Package metrics defines the service's Prometheus metrics: per-method gRPC
// counts and latency, and the PostgreSQL pool's state.
package metrics

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// GRPC records every unary call's outcome and duration.
type GRPC struct {
	handled     *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	invalidUTF8 *prometheus.CounterVec
	// exemplar, when set, labels an observation's exemplar (its trace).
	exemplar func(context.Context) prometheus.Labels
}

// WithExemplars makes the latency histogram carry the exemplar f returns
// for a call's context (nil: none).
func (m *GRPC) WithExemplars(f func(context.Context) prometheus.Labels) *GRPC {
	m.exemplar = f
	return m
}

// NewGRPC registers the gRPC metrics in reg.
func NewGRPC(reg prometheus.Registerer) *GRPC {
	m := &GRPC{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "RPCs completed on the server, by method and status code.",
		}, []string{"grpc_service", "grpc_method", "grpc_code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Time to handle an RPC on the server, by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"grpc_service", "grpc_method"}),
		invalidUTF8: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nova_auth_grpc_invalid_utf8_requests_total",
			Help: "Requests refused with INVALID_ARGUMENT because a string field was not UTF-8, by method (also in grpc_server_handled_total).",
		}, []string{"grpc_service", "grpc_method"}),
	}
	reg.MustRegister(m.handled, m.seconds, m.invalidUTF8)
	return m
}

// InvalidUTF8 counts one request of fullMethod ("/pkg.Service/Method")
// refused because a string field was not UTF-8.
func (m *GRPC) InvalidUTF8(fullMethod string) {
	svc, method := split(fullMethod)
	m.invalidUTF8.WithLabelValues(svc, method).Inc()
}

// Unary is the interceptor that records the metrics.
func (m *GRPC) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	svc, method := split(info.FullMethod)
	d := time.Since(start).Seconds()
	var ex prometheus.Labels
	if m.exemplar != nil {
		ex = m.exemplar(ctx)
	}
	if obs := m.seconds.WithLabelValues(svc, method); ex != nil {
		obs.(prometheus.ExemplarObserver).ObserveWithExemplar(d, ex)
	} else {
		obs.Observe(d)
	}
	m.handled.WithLabelValues(svc, method, status.Code(err).String()).Inc()
	return resp, err
}

func split(full string) (string, string) {
	// "/nova.auth_service.AuthService/GetUser"
	for i := len(full) - 1; i > 0; i-- {
		if full[i] == '/' {
			return full[1:i], full[i+1:]
		}
	}
	return "unknown", full
}

// poolCollector reports pgxpool statistics at scrape time.
type poolCollector struct {
	pool                                                      *pgxpool.Pool
	total, idle, acquired, max, acquires, emptyWait, canceled *prometheus.Desc
	waitSeconds                                               *prometheus.Desc
}

// RegisterPool exports the pool's state in reg.
func RegisterPool(reg prometheus.Registerer, pool *pgxpool.Pool) {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("nova_auth_db_pool_"+name, help, nil, nil)
	}
	reg.MustRegister(&poolCollector{
		pool:        pool,
		total:       d("connections", "Open connections."),
		idle:        d("idle_connections", "Idle connections."),
		acquired:    d("acquired_connections", "Connections in use."),
		max:         d("max_connections", "Most connections the pool opens."),
		acquires:    d("acquires_total", "Connections acquired from the pool."),
		emptyWait:   d("empty_acquires_total", "Acquires that had to wait for a connection."),
		canceled:    d("canceled_acquires_total", "Acquires canceled by their context."),
		waitSeconds: d("acquire_wait_seconds_total", "Time spent waiting for a connection."),
	})
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.max, c.acquires, c.emptyWait, c.canceled, c.waitSeconds} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.total, float64(s.TotalConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.max, float64(s.MaxConns()))
	k(c.acquires, float64(s.AcquireCount()))
	k(c.emptyWait, float64(s.EmptyAcquireCount()))
	k(c.canceled, float64(s.CanceledAcquireCount()))
	k(c.waitSeconds, s.EmptyAcquireWaitTime().Seconds())
}

// NewRegistry is a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// RegisterHealth exports readiness and whether the last readiness check
// reached the database: a replica stays ready through a database outage,
// so these gauges, not the endpoints, show the outage.
func RegisterHealth(reg prometheus.Registerer, ready, databaseUp func() bool) {
	gauge := func(name, help string, f func() bool) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if f() {
				return 1
			}
			return 0
		})
	}
	reg.MustRegister(
		gauge("nova_auth_ready", "1 when the replica reports ready (/readiness 200, gRPC health SERVING).", ready),
		gauge("nova_auth_database_up", "1 when the last readiness check reached PostgreSQL.", databaseUp),
	)
}
