// Command hello is the tiny workload of the local cluster's own test: an HTTP
// server that answers every request with a fixed line, and logs one line at
// start so that the test can read pod logs. With -get URL it is instead a
// client that prints the body of one GET (used from a second pod to reach the
// first through its Service); it retries for up to -retry-for, as a new
// Service's rules reach kube-proxy a moment after its endpoints are ready.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("listen", ":8080", "address to serve on")
	get := flag.String("get", "", "GET this URL, print the body and exit")
	retryFor := flag.Duration("retry-for", 0, "with -get, keep trying this long")
	flag.Parse()

	if *get != "" {
		os.Exit(fetch(*get, *retryFor))
	}

	host, _ := os.Hostname()
	log.Printf("hello listening on %s", *addr)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func fetch(url string, retryFor time.Duration) int {
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(retryFor)
	for {
		resp, err := c.Get(url)
		if err == nil {
			defer resp.Body.Close()
			if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
				return 1
			}
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		time.Sleep(200 * time.Millisecond)
	}
}
