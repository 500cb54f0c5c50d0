package cache

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestHitAllocsWithoutRecordingSpan: saying on the span whether the cache
// answered costs nothing when no span records (tracing off, or this call
// not sampled): a hit of GetUser or CheckPermission (held and not held)
// allocates no more than before tracing (none).
func TestHitAllocsWithoutRecordingSpan(t *testing.T) {
	f, c, id := oneUser("a")
	f.perms[id] = []string{"users:read"}
	bg := context.Background()
	if _, err := c.GetUser(bg, id); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"users:read", "billing"} {
		if _, err := c.HasPermission(bg, id, p); err != nil {
			t.Fatal(err)
		}
	}
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}}))
	for name, ctx := range map[string]context.Context{"tracing off": context.Background(), "not sampled": unsampled} {
		if n := testing.AllocsPerRun(1000, func() {
			if _, err := c.GetUser(ctx, id); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"users:read", "billing"} {
				if has, err := c.HasPermission(ctx, id, p); err != nil || has != (p == "users:read") {
					t.Fatal(has, err)
				}
			}
		}); n != 0 {
			t.Errorf("%s: a cache hit allocates %.1f times, want 0", name, n)
		}
	}
}
