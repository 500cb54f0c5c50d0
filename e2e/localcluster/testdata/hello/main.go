// Command hello is the tiny workload of the local cluster's own test: an HTTP
// server that answers every request with a fixed line, and logs one line at
// start so that the test can read pod logs. With -get URL it is instead a
// client that prints the body of one GET (used from a second pod to reach the
// first through its Service).
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
	flag.Parse()

	if *get != "" {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(*get)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
			os.Exit(1)
		}
		return
	}

	host, _ := os.Hostname()
	log.Printf("hello listening on %s", *addr)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
