package clients

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrCircuitOpen is matched (errors.Is) by the error of a call refused
// because its service's circuit breaker is open or half-open and busy. Its
// gRPC status code is Unavailable.
var ErrCircuitOpen = errors.New("circuit breaker open")

// openError is what a refused call returns: Unavailable to status.Code, and
// ErrCircuitOpen to errors.Is.
type openError struct {
	service string
	state   string
}

func (e *openError) Error() string {
	return fmt.Sprintf("clients: %s service: circuit breaker %s, call not sent", e.service, e.state)
}

func (e *openError) GRPCStatus() *status.Status { return status.New(codes.Unavailable, e.Error()) }

func (e *openError) Is(target error) bool { return target == ErrCircuitOpen }

// unwell reports whether an error means the service itself is in trouble, as
// opposed to an answer about the request (NotFound, InvalidArgument …).
func unwell(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal:
		return true
	}
	return false
}

// excluded errors say nothing about the service: the caller gave up.
func excluded(err error) bool {
	return status.Code(err) == codes.Canceled || errors.Is(err, context.Canceled)
}

// breaker is one service's circuit breaker and its metrics.
type breaker struct {
	service  string
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	rejected prometheus.Counter
}

func newBreaker(service string, cfg *Config, m *metrics, log *slog.Logger) *breaker {
	failures := cfg.BreakerFailures
	b := &breaker{service: service, rejected: m.rejected.WithLabelValues(service)}
	state := m.state.WithLabelValues(service)
	state.Set(float64(gobreaker.StateClosed))
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        service,
		MaxRequests: cfg.BreakerHalfOpenCalls,
		Timeout:     cfg.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			return !unwell(err)
		},
		IsExcluded: excluded,
		// Called under the breaker's lock: log and count, never call back.
		OnStateChange: func(name string, from, to gobreaker.State) {
			state.Set(float64(to))
			m.transitions.WithLabelValues(name, from.String(), to.String()).Inc()
			level := slog.LevelWarn
			if to == gobreaker.StateClosed {
				level = slog.LevelInfo
			}
			log.Log(context.Background(), level, "circuit breaker state changed",
				slog.String("service", name), slog.String("from", from.String()), slog.String("to", to.String()),
				slog.Duration("cooldown", cfg.BreakerCooldown))
		},
	})
	return b
}

// unary is the interceptor: it sits above gRPC's retries, so one call that
// failed after all its attempts counts once.
func (b *breaker) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	done, err := b.cb.Allow()
	if err != nil {
		b.rejected.Inc()
		st := "open"
		if errors.Is(err, gobreaker.ErrTooManyRequests) {
			st = "half-open with trial calls in flight"
		}
		return &openError{service: b.service, state: st}
	}
	err = invoker(ctx, method, req, reply, cc, opts...)
	done(err)
	return err
}

// metrics are the breaker's Prometheus series, labelled by service.
type metrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	rejected    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "grpc_client_circuit_breaker_state",
			Help: "Circuit breaker state per target service: 0 closed, 1 half-open, 2 open.",
		}, []string{"service"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_client_circuit_breaker_transitions_total",
			Help: "Circuit breaker state changes per target service.",
		}, []string{"service", "from", "to"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_client_circuit_breaker_rejected_total",
			Help: "Calls failed fast, without reaching the network, because the breaker was open.",
		}, []string{"service"}),
	}
	var err error
	if m.state, err = register(reg, m.state); err != nil {
		return nil, err
	}
	if m.transitions, err = register(reg, m.transitions); err != nil {
		return nil, err
	}
	if m.rejected, err = register(reg, m.rejected); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg, or returns the collector already registered under
// the same name so that several pools in one process share the series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
