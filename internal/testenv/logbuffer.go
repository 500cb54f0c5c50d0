package testenv

import (
	"strings"
	"sync"
)

// LogBuffer is a process's log sink that is safe to read while the
// process writes (ServeOptions.Log, StartCollector).
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
