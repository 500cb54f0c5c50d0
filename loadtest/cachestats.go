package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cacheCounts are the service's read-cache counters
// (nova_auth_cache_reads_total) from its /metrics.
type cacheCounts struct {
	Hits   float64 `json:"hits"`
	Misses float64 `json:"misses"`
	Bypass float64 `json:"bypass"`
	// Err says why the counts are unknown (no --metrics-url, unreachable).
	Err string `json:"error,omitempty"`
}

func (c cacheCounts) known() bool   { return c.Err == "" && c.Hits+c.Misses > 0 }
func (c cacheCounts) rate() float64 { return c.Hits / (c.Hits + c.Misses) }

// since is the counts between an earlier scrape and this one.
func (c cacheCounts) since(before cacheCounts) cacheCounts {
	if before.Err != "" {
		return before
	}
	if c.Err != "" {
		return c
	}
	return cacheCounts{Hits: c.Hits - before.Hits, Misses: c.Misses - before.Misses, Bypass: c.Bypass - before.Bypass}
}

func (c cacheCounts) String() string {
	switch {
	case c.Err != "":
		return "Cache hit rate in the mix (after the warm-up): unknown (" + c.Err + ")."
	case c.Hits+c.Misses == 0:
		return fmt.Sprintf("Cache hit rate in the mix (after the warm-up): the cache was off (%.0f reads bypassed it).", c.Bypass)
	}
	return fmt.Sprintf("Cache hit rate in the mix (after the warm-up): %.1f%% (%.0f hits, %.0f misses, %.0f bypassed; target ≥ %.0f%%).",
		100*c.rate(), c.Hits, c.Misses, c.Bypass, 100*benchMixHitRate)
}

// scrapeCache reads the counters from url (the service's /metrics).
func scrapeCache(url string) cacheCounts {
	if url == "" {
		return cacheCounts{Err: "no --metrics-url"}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return cacheCounts{Err: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cacheCounts{Err: url + ": " + resp.Status}
	}
	var c cacheCounts
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "nova_auth_cache_reads_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `result="hit"`):
			c.Hits += v
		case strings.Contains(line, `result="miss"`):
			c.Misses += v
		case strings.Contains(line, `result="bypass"`):
			c.Bypass += v
		}
	}
	if err := sc.Err(); err != nil {
		return cacheCounts{Err: err.Error()}
	}
	return c
}

// cacheWindow scrapes the counters after delay (the mix's warm-up, whose
// calls the latency leaves out too, and which fills the cache) and returns
// a function that gives the counts from then until it is called.
func cacheWindow(url string, delay time.Duration) func() cacheCounts {
	start := make(chan cacheCounts, 1)
	time.AfterFunc(delay, func() { start <- scrapeCache(url) })
	return func() cacheCounts { return scrapeCache(url).since(<-start) }
}
