package main

import (
	"sort"
	"sync"
	"time"

	"github.com/bojand/ghz/runner"
)

// calls records how each call ended, once per call (grpc.OnFinish). ghz's
// rows come from a gRPC stats handler, which grpc-go calls once per attempt:
// a call that met a draining connection (a server sending GOAWAY in a rolling
// upgrade) and that grpc-go retried transparently leaves a failed row ("the
// connection is draining", "transport is closing") although the call
// succeeded. These records tell such rows from failed calls.
type calls struct {
	mu     sync.Mutex
	failed []failedCall
}

type failedCall struct {
	end time.Time
	msg string
}

// finish is the grpc.OnFinish callback: err is the call's final error.
func (c *calls) finish(err error) {
	if err == nil {
		return
	}
	end := time.Now()
	c.mu.Lock()
	c.failed = append(c.failed, failedCall{end, err.Error()})
	c.mu.Unlock()
}

// withoutRetried returns ghz's rows less the failed attempts that were
// retried, and those attempts. A failed call's last attempt ended just before
// the call did: each failed call takes the latest unclaimed failed row with
// its message that ended no later than it did (any failed row when none has
// its message). Failed rows left unclaimed are retried attempts.
func (c *calls) withoutRetried(rows []runner.ResultDetail) (kept, retried []runner.ResultDetail) {
	c.mu.Lock()
	failed := append([]failedCall(nil), c.failed...)
	c.mu.Unlock()
	var bad []int // indexes of failed rows, by end time
	for i, r := range rows {
		if rowFailed(r) {
			bad = append(bad, i)
		}
	}
	if len(bad) == 0 {
		return rows, nil
	}
	sort.Slice(bad, func(a, b int) bool { return rows[bad[a]].Timestamp.Before(rows[bad[b]].Timestamp) })
	sort.Slice(failed, func(a, b int) bool { return failed[a].end.Before(failed[b].end) })
	// One pass in time order: the failed rows that ended before a call's end
	// are stacked, by message and all together; the call claims the top of
	// its message's stack, else of the whole. Claimed rows are skipped
	// lazily, so each row is stacked and unstacked at most twice.
	claimed := make(map[int]bool, len(failed))
	byMsg := map[string][]int{}
	var all []int
	take := func(stack *[]int) bool {
		for len(*stack) > 0 {
			i := (*stack)[len(*stack)-1]
			*stack = (*stack)[:len(*stack)-1]
			if !claimed[i] {
				claimed[i] = true
				return true
			}
		}
		return false
	}
	next := 0
	for _, f := range failed {
		for ; next < len(bad) && !rows[bad[next]].Timestamp.After(f.end); next++ {
			i := bad[next]
			byMsg[rows[i].Error] = append(byMsg[rows[i].Error], i)
			all = append(all, i)
		}
		s := byMsg[f.msg]
		ok := take(&s)
		byMsg[f.msg] = s
		if !ok {
			take(&all)
		}
	}
	kept = make([]runner.ResultDetail, 0, len(rows))
	for i, r := range rows {
		if rowFailed(r) && !claimed[i] {
			retried = append(retried, r)
			continue
		}
		kept = append(kept, r)
	}
	return kept, retried
}

// rowFailed says whether ghz recorded a row as failed.
func rowFailed(r runner.ResultDetail) bool { return r.Error != "" || r.Status != "OK" }
