package clients_test

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/clients"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

func getUser(p *clients.Pool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := p.Auth().GetUser(ctx, &authpb.GetUserRequest{UserId: aliceID})
	return err
}

// callMany makes n GetUser calls from 8 goroutines and returns the errors.
func callMany(p *clients.Pool, n int) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := getUser(p, 5*time.Second); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for range n {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	return errs
}

// warmUp calls until every running backend in bs has served GetUser, so
// that all of them are connected and in the rotation.
func warmUp(t *testing.T, p *clients.Pool, bs []*backend) {
	t.Helper()
	start := counts(t, bs, "GetUser")
	eventually(t, 20*time.Second, "every backend gets traffic", func() bool {
		getUser(p, time.Second)
		for i, n := range diff(counts(t, bs, "GetUser"), start) {
			if bs[i].running() && n == 0 {
				return false
			}
		}
		return true
	})
}

// within reports whether got is within ±frac of want.
func within(got, want int, frac float64) bool {
	d := float64(got - want)
	return d <= frac*float64(want) && -d <= frac*float64(want)
}

func TestRoundRobinSpreadsCallsOverBackends(t *testing.T) {
	p, _ := newPool(t, addrsOf(backends), nil)
	warmUp(t, p, backends)

	const n = 300
	before := counts(t, backends, "GetUser")
	if errs := callMany(p, n); len(errs) > 0 {
		t.Fatalf("%d of %d calls failed, first: %v", len(errs), n, errs[0])
	}
	got := diff(counts(t, backends, "GetUser"), before)
	t.Logf("calls per backend: %v", got)
	for i, c := range got {
		if !within(c, n/len(backends), 0.25) {
			t.Errorf("backend %s served %d of %d calls, want %d ± 25%% (spread %v)", backends[i].host, c, n, n/len(backends), got)
		}
	}
}

// A fourth backend whose database is not migrated reports NOT_SERVING:
// health checking keeps calls away from it until it is SERVING.
func TestUnhealthyBackendGetsNoTraffic(t *testing.T) {
	ctx := context.Background()
	url, err := pg.CreateDatabase(ctx, "unmigrated")
	if err != nil {
		t.Fatal(err)
	}
	sick, err := newBackend("127.0.0.4", url)
	if err != nil {
		t.Fatal(err)
	}
	if err := sick.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sick.stop() })
	if err := sick.waitHTTP("/health", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	all := append(backends[:3:3], sick)

	t.Run("health checking on", func(t *testing.T) {
		p, _ := newPool(t, addrsOf(all), nil)
		warmUp(t, p, backends)
		before := counts(t, all, "GetUser")
		if errs := callMany(p, 150); len(errs) > 0 {
			t.Fatalf("%d calls failed, first: %v", len(errs), errs[0])
		}
		got := diff(counts(t, all, "GetUser"), before)
		t.Logf("calls per backend (last is NOT_SERVING): %v", got)
		if got[3] != 0 {
			t.Errorf("the NOT_SERVING backend got %d calls, want 0", got[3])
		}
	})
	t.Run("health checking off", func(t *testing.T) {
		// The control: without health checks the same backend does get calls.
		p, _ := newPool(t, addrsOf(all), func(c *clients.Config) { c.HealthCheck = false })
		eventually(t, 20*time.Second, "the NOT_SERVING backend gets calls without health checking", func() bool {
			getUser(p, time.Second)
			return counts(t, all[3:], "GetUser")[0] > 0
		})
	})
	t.Run("becomes SERVING", func(t *testing.T) {
		p, _ := newPool(t, addrsOf(all), nil)
		warmUp(t, p, backends)
		if _, err := authService(url, "migrate"); err != nil {
			t.Fatal(err)
		}
		// Alice is not in that database: NotFound there, which is fine.
		eventually(t, 20*time.Second, "the backend gets calls once SERVING", func() bool {
			getUser(p, time.Second)
			return counts(t, all[3:], "GetUser")[0] > 0
		})
	})
}

func TestStoppedBackendLeavesRotationAndRejoins(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) { stopAndRestart(t, sig) })
	}
}

// stopAndRestart stops one backend with sig (SIGTERM: a rolling update;
// SIGKILL: a crash) while calls are running, then starts it again.
func stopAndRestart(t *testing.T, sig syscall.Signal) {
	p, _ := newPool(t, addrsOf(backends), nil)
	warmUp(t, p, backends)
	victim := backends[1]
	t.Cleanup(func() { restartAll(t) })

	// Calls keep running from before the stop until after the process is
	// gone; with retries on Unavailable none of them should fail.
	stopped := make(chan struct{})
	type result struct {
		calls, failed int
		errs          []error
	}
	res := make(chan result, 1)
	go func() {
		var r result
		for done := false; !done; {
			select {
			case <-stopped:
				done = true
			default:
			}
			r.calls += 50
			errs := callMany(p, 50)
			r.failed += len(errs)
			r.errs = append(r.errs, errs...)
		}
		res <- r
	}()
	time.Sleep(20 * time.Millisecond)
	if err := victim.signal(sig); err != nil && sig == syscall.SIGTERM {
		t.Fatalf("stop %s: %v", victim.host, err)
	}
	close(stopped)
	r := <-res
	t.Logf("%v: %d of %d calls made around the stop failed", sig, r.failed, r.calls)
	for _, err := range r.errs {
		t.Logf("  %v", err)
	}
	// A graceful stop drains: calls in flight finish, new ones go elsewhere.
	// A crash may fail calls in flight on it, and gRPC rightly does not retry
	// them (the server may have run them), so only SIGTERM must lose none.
	if sig == syscall.SIGTERM && r.failed > 0 {
		t.Errorf("%d calls failed during a graceful stop, want 0", r.failed)
	}

	// After the client has noticed: no failures at all.
	const n = 200
	before := counts(t, backends, "GetUser")
	if errs := callMany(p, n); len(errs) > 0 {
		t.Fatalf("with %s stopped, %d of %d calls failed, first: %v", victim.host, len(errs), n, errs[0])
	}
	got := diff(counts(t, backends, "GetUser"), before)
	t.Logf("calls per backend with %s stopped: %v", victim.host, got)
	if got[0]+got[2] != n {
		t.Errorf("the two running backends served %d calls, want %d", got[0]+got[2], n)
	}

	if err := victim.start(); err != nil {
		t.Fatal(err)
	}
	if err := victim.waitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the restarted backend gets traffic again", func() bool {
		getUser(p, time.Second)
		return counts(t, backends[1:2], "GetUser")[0] > 0
	})
	before = counts(t, backends, "GetUser")
	if errs := callMany(p, 300); len(errs) > 0 {
		t.Fatalf("after restart, %d calls failed, first: %v", len(errs), errs[0])
	}
	got = diff(counts(t, backends, "GetUser"), before)
	t.Logf("calls per backend after restart: %v", got)
	if !within(got[1], 100, 0.5) {
		t.Errorf("restarted backend served %d of 300 calls, want about 100", got[1])
	}
}

func TestBreakerOpensWhenAllBackendsStopAndClosesWhenBack(t *testing.T) {
	const cooldown = time.Second
	p, reg := newPool(t, addrsOf(backends), func(c *clients.Config) {
		c.BreakerFailures = 3
		c.BreakerCooldown = cooldown
		c.ReconnectMaxBackoff = 200 * time.Millisecond
	})
	noBreaker, _ := newPool(t, addrsOf(backends), func(c *clients.Config) { c.BreakerFailures = 0 })
	warmUp(t, p, backends)
	warmUp(t, noBreaker, backends)
	ok := measure(t, p, 200, func(err error) bool { return err == nil })
	t.Logf("normal call (GetUser over loopback, real database): %v", ok)

	var wg sync.WaitGroup
	for _, b := range backends {
		wg.Add(1)
		go func() { defer wg.Done(); b.stop() }()
	}
	wg.Wait()
	t.Cleanup(func() { restartAll(t) }) // for the tests after this one, even on failure

	var last error
	eventually(t, 20*time.Second, "breaker opens", func() bool {
		last = getUser(p, time.Second)
		if last == nil {
			t.Fatal("a call succeeded with every backend stopped")
		}
		return p.BreakerState("auth") == "open"
	})
	if c := status.Code(last); c != codes.Unavailable && c != codes.DeadlineExceeded {
		t.Errorf("calls to stopped backends failed with %v, want Unavailable or DeadlineExceeded", last)
	}

	fast := measure(t, p, 200, func(err error) bool {
		if err == nil {
			t.Fatal("a call succeeded with every backend stopped")
		}
		if !errors.Is(err, clients.ErrCircuitOpen) {
			return false // the cooldown passed: a trial call, not a fail-fast one
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("breaker refusal %v has code %v, want Unavailable", err, status.Code(err))
		}
		return true
	})
	slow := measure(t, noBreaker, 5, func(err error) bool { return err != nil })
	t.Logf("breaker open, call fails fast in %v; without a breaker a call fails in %v (normal call %v)", fast, slow, ok)
	if rejected := metricValue(t, reg, "grpc_client_circuit_breaker_rejected_total", nil); rejected < 1 {
		t.Errorf("rejected_total = %v, want > 0", rejected)
	}
	if g := metricValue(t, reg, "grpc_client_circuit_breaker_state", map[string]string{"service": "auth"}); g != 2 {
		t.Errorf("state gauge = %v, want 2 (open)", g)
	}

	restartAll(t)
	eventually(t, 30*time.Second, "breaker closes once the backends are back", func() bool {
		getUser(p, time.Second)
		return p.BreakerState("auth") == "closed"
	})
	for _, tr := range []struct{ from, to string }{{"closed", "open"}, {"open", "half-open"}, {"half-open", "closed"}} {
		if n := metricValue(t, reg, "grpc_client_circuit_breaker_transitions_total",
			map[string]string{"service": "auth", "from": tr.from, "to": tr.to}); n < 1 {
			t.Errorf("transitions %s → %s = %v, want ≥ 1", tr.from, tr.to, n)
		}
	}
	if g := metricValue(t, reg, "grpc_client_circuit_breaker_state", map[string]string{"service": "auth"}); g != 0 {
		t.Errorf("state gauge = %v, want 0 (closed)", g)
	}
	if errs := callMany(p, 60); len(errs) > 0 {
		t.Fatalf("after recovery %d calls failed, first: %v", len(errs), errs[0])
	}
}

// measure times n sequential GetUser calls and returns the mean duration of
// those whose error keep accepts.
func measure(t *testing.T, p *clients.Pool, n int, keep func(error) bool) time.Duration {
	t.Helper()
	var total time.Duration
	kept := 0
	for range n {
		start := time.Now()
		err := getUser(p, time.Second)
		d := time.Since(start)
		if keep(err) {
			total += d
			kept++
		}
	}
	if kept == 0 {
		t.Fatalf("none of %d calls qualified for the measurement", n)
	}
	return total / time.Duration(kept)
}

func restartAll(t *testing.T) {
	t.Helper()
	for _, b := range backends {
		if !b.running() {
			if err := b.start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, b := range backends {
		if err := b.waitReady(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuthAgainstRealService goes through every typed call once, so the
// pool's service config (deadlines, retry policy names) is known to fit the
// real service.
func TestAuthAgainstRealService(t *testing.T) {
	p, _ := newPool(t, addrsOf(backends), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := p.Auth()
	if r, err := a.GetUserByEmail(ctx, &authpb.GetUserByEmailRequest{Email: aliceEmail}); err != nil || r.GetUser().GetId() != aliceID {
		t.Fatalf("GetUserByEmail = %v, %v", r, err)
	}
	if r, err := a.CheckUserExists(ctx, &authpb.CheckUserExistsRequest{UserId: aliceID}); err != nil || !r.GetExists() {
		t.Fatalf("CheckUserExists = %v, %v", r, err)
	}
	_, err := a.GetUser(ctx, &authpb.GetUserRequest{UserId: "00000000-0000-0000-0000-000000000000"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetUser(unknown) = %v, want NotFound", err)
	}
	// RecordFailedLogin reaches the server once per call: the count moves by one.
	first, err := a.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: aliceID})
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: aliceID})
	if err != nil {
		t.Fatal(err)
	}
	if second.GetFailedAttempts() != first.GetFailedAttempts()+1 {
		t.Errorf("failed attempts went %d → %d, want +1", first.GetFailedAttempts(), second.GetFailedAttempts())
	}
	if p.BreakerState("auth") != "closed" {
		t.Errorf("NotFound moved the breaker to %s", p.BreakerState("auth"))
	}
}
