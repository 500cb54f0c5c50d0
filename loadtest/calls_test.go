package main

import (
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bojand/ghz/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestDrainingConnections drives ghz at a server that ends every connection
// after 20 ms (GOAWAY, then a grace period), so calls keep meeting draining
// connections, as in a rolling upgrade. grpc-go retries such calls by itself
// and every call succeeds: the summary counts each call once, none failed,
// and reports the failed attempts apart.
func TestDrainingConnections(t *testing.T) {
	var served atomic.Int64
	srv := grpc.NewServer(
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 20 * time.Millisecond, MaxConnectionAgeGrace: 5 * time.Second}),
		grpc.UnknownServiceHandler(func(_ any, st grpc.ServerStream) error {
			var in emptypb.Empty // any request decodes as Empty, its fields unknown
			if err := st.RecvMsg(&in); err != nil {
				return err
			}
			served.Add(1)
			return st.SendMsg(&emptypb.Empty{}) // and an empty response as any message
		}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Stop
	defer srv.Stop()
	ps, err := protoset()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenarioByName("GetUser")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sc.messages(fakeData)
	if err != nil {
		t.Fatal(err)
	}
	// Up to six runs, until one has met a draining connection (one in
	// eight runs has not, here).
	retried := 0
	for run := 0; run < 6 && retried == 0; run++ {
		served.Store(0)
		shape := Shape{RPS: 1000, Concurrency: 8, Connections: 2, Duration: 3 * time.Second, Timeout: 5 * time.Second, WaitForReady: true}
		r, _, err := runOne(Target{Addr: ln.Addr().String(), DialTimeout: 5 * time.Second}, sc, msgs, shape, ps, &progress{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d calls, %d failed %v; %d attempts retried %v; the server answered %d", r.Calls, r.Errors, r.ErrorMsgs, r.Retried, r.RetriedMsgs, served.Load())
		if r.Errors != 0 || int64(r.Calls) != served.Load() {
			t.Errorf("%d of %d calls failed %v, the server answered %d: want every call counted once, none failed",
				r.Errors, r.Calls, r.ErrorMsgs, served.Load())
		}
		retried += r.Retried
	}
	if retried == 0 {
		t.Error("no attempt met a draining connection in six runs: the test did not exercise retried attempts")
	}
}

// TestWithoutRetried: each failed call claims the latest failed row with its
// message that ended before it (any failed row when none has its message);
// the failed rows left are retried attempts.
func TestWithoutRetried(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	row := func(ms int, status, err string) runner.ResultDetail {
		return runner.ResultDetail{Timestamp: at(ms), Latency: time.Millisecond, Status: status, Error: err}
	}
	const drain, deadline = "rpc error: code = Unavailable desc = the connection is draining", "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
	rows := []runner.ResultDetail{
		row(10, "OK", ""),
		row(20, "Unavailable", drain),         // retried: the call succeeded at 21
		row(21, "OK", ""),                     //
		row(30, "Unavailable", drain),         // retried, then the call failed at 31
		row(31, "Unavailable", drain),         // the failed call's last attempt
		row(40, "DeadlineExceeded", deadline), // a failed call
		row(50, "Unavailable", drain),         // retried: the call succeeded
		row(60, "Unknown", "stream reset"),    // a failed call whose final error reads otherwise
		row(70, "", ""),                       // no status: a failed call
		row(80, "Unavailable", drain),         // two attempts ending at once: one retried,
		row(80, "Unavailable", drain),         // the other a failed call's last
	}
	c := &calls{failed: []failedCall{
		{at(40), deadline}, {at(31), drain}, {at(60), "rpc error: code = Unknown desc = stream reset"},
		{at(70), ""}, {at(80), drain},
		{at(5), deadline}, // failed before any attempt (no row): claims nothing
	}}
	kept, retried := c.withoutRetried(rows)
	var keptAt, retriedAt []int
	for _, r := range kept {
		keptAt = append(keptAt, int(r.Timestamp.Sub(t0)/time.Millisecond))
	}
	for _, r := range retried {
		retriedAt = append(retriedAt, int(r.Timestamp.Sub(t0)/time.Millisecond))
	}
	if want := []int{10, 21, 31, 40, 60, 70, 80}; !slices.Equal(keptAt, want) {
		t.Errorf("kept rows at %v ms, want %v", keptAt, want)
	}
	if want := []int{20, 30, 50, 80}; !slices.Equal(retriedAt, want) {
		t.Errorf("retried rows at %v ms, want %v", retriedAt, want)
	}
}
