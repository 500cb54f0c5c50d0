// Command pause is the sandbox ("infra") container of every pod on the local
// cluster: it holds the pod's namespaces open and does nothing else. It is
// PID 1 in its pod, so it must reap orphans and exit on SIGTERM/SIGINT itself,
// as the kernel gives PID 1 no default signal handlers.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
