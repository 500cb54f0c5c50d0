package tracing

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// PGX is the pgx tracer (ConnConfig.Tracer) that makes a client span per
// PostgreSQL statement under the call's span, and one for a failed pool
// acquire (the database down: no statement ever starts). A span records
// the statement's summary ("SELECT users"), never its parameters: they hold
// user ids, emails and hashes. Nor does it record a server error's message,
// which can quote a value ("Key (email)=(…) already exists"): only SQLSTATE.
type PGX struct{}

var (
	_ pgx.QueryTracer       = PGX{}
	_ pgxpool.AcquireTracer = PGX{}
)

type pgSpanKey struct{}
type acquireKey struct{}

// TraceQueryStart starts the statement's span when the call's span records.
func (PGX) TraceQueryStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx
	}
	op, table, name := summary(d.SQL)
	attrs := []attribute.KeyValue{
		attribute.String("db.system.name", "postgresql"),
		attribute.String("db.operation.name", op),
		attribute.String("db.query.summary", name),
	}
	if table != "" {
		attrs = append(attrs, attribute.String("db.collection.name", table))
	}
	if conn != nil {
		attrs = append(attrs, attribute.String("db.namespace", conn.Config().Database))
	}
	ctx, sp := parent.TracerProvider().Tracer(Scope).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, pgSpanKey{}, sp)
}

// TraceQueryEnd ends it with the rows affected or the error's SQLSTATE.
func (PGX) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	sp, ok := ctx.Value(pgSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if d.Err != nil {
		pgError(sp, d.Err)
	} else {
		sp.SetAttributes(attribute.Int64("db.response.returned_rows", d.CommandTag.RowsAffected()))
	}
	sp.End()
}

// TraceAcquireStart notes when the acquire began; a span is made only if it fails.
func (PGX) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	return context.WithValue(ctx, acquireKey{}, time.Now())
}

// TraceAcquireEnd makes a span for a failed acquire, from when it began.
func (PGX) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	start, ok := ctx.Value(acquireKey{}).(time.Time)
	if !ok || d.Err == nil {
		return
	}
	_, sp := trace.SpanFromContext(ctx).TracerProvider().Tracer(Scope).Start(ctx, "pool acquire",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql")))
	pgError(sp, d.Err)
	sp.End()
}

func pgError(sp trace.Span, err error) {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		sp.SetAttributes(attribute.String("db.response.status_code", pe.Code), attribute.String("error.type", pe.Code))
		sp.SetStatus(otelcodes.Error, "SQLSTATE "+pe.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		sp.SetAttributes(attribute.String("error.type", "canceled"))
		sp.SetStatus(otelcodes.Error, "statement canceled: the call's deadline passed or its client left")
	default:
		// A connection error's text names the host and port, no more, but
		// pgx wraps others too: the class is enough to act on.
		sp.SetAttributes(attribute.String("error.type", "connection"))
		sp.SetStatus(otelcodes.Error, "database unreachable")
	}
}

// summaries caches each statement's summary: the service runs a few dozen
// constant statements, so each is parsed once. Bounded all the same.
var summaries sync.Map

const maxSummaries = 1000

var summaryCount int64
var summaryMu sync.Mutex

type sqlSummary struct{ op, table, name string }

// summary names a statement after its operation and the tables it reads or
// writes ("SELECT users", "UPDATE users"), the db.query.summary of the
// semantic conventions: stable, and never a value.
func summary(sql string) (op, table, name string) {
	if v, ok := summaries.Load(sql); ok {
		s := v.(sqlSummary)
		return s.op, s.table, s.name
	}
	s := parseSummary(sql)
	summaryMu.Lock()
	if summaryCount < maxSummaries {
		summaryCount++
		summaries.Store(sql, s)
	}
	summaryMu.Unlock()
	return s.op, s.table, s.name
}

func parseSummary(sql string) sqlSummary {
	words := strings.FieldsFunc(sql, func(r rune) bool {
		return unicode.IsSpace(r) || r == ',' || r == ';' || r == ')'
	})
	var s sqlSummary
	seen := map[string]bool{}
	var tables []string
	for i, w := range words {
		u := strings.ToUpper(w)
		if s.op == "" {
			s.op = u
		}
		if (u == "FROM" || u == "JOIN" || u == "INTO" || (u == "UPDATE" && i == 0)) && i+1 < len(words) {
			t := words[i+1]
			if strings.ContainsAny(t, "($") || !identifier(t) {
				continue // a subquery or a function such as unnest($1)
			}
			t = strings.ToLower(t)
			if !seen[t] {
				seen[t] = true
				tables = append(tables, t)
			}
		}
	}
	if s.op == "" {
		s.op = "UNKNOWN"
	}
	s.name = s.op
	if len(tables) > 0 {
		s.table = tables[0]
		s.name += " " + strings.Join(tables, " ")
	}
	return s
}

func identifier(w string) bool {
	for _, r := range w {
		if !(r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return false
		}
	}
	return w != ""
}
