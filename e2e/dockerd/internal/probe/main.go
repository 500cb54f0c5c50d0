// Command probe is the test image of e2e/dockerd: with no argument it waits
// for a signal (a container to exec into); "caps" prints the effective
// capability mask, "lookup NAME" resolves a name through the container's
// resolver (docker's embedded DNS on a user-defined network).
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		return
	}
	switch os.Args[1] {
	case "caps":
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			fail(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
				fmt.Println(strings.TrimSpace(v))
				return
			}
		}
		fail(fmt.Errorf("no CapEff in /proc/self/status"))
	case "lookup":
		addrs, err := net.LookupHost(os.Args[2])
		if err != nil {
			fail(err)
		}
		fmt.Println(strings.Join(addrs, " "))
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "probe:", err)
	os.Exit(1)
}
