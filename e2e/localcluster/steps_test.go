package localcluster

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestRunSteps checks the order in which runSteps starts and waits for steps
// and that its errors name the step, without starting anything real.
func TestRunSteps(t *testing.T) {
	boom := errors.New("boom")
	// Each step records "start <name>" and "wait <name>"; opts "wait" gives
	// it a wait, "fail-start" and "fail-wait" make those fail.
	type spec struct {
		name  string
		needs []string
		opts  string
	}
	tests := []struct {
		name    string
		steps   []spec
		want    []string
		wantErr string
	}{
		{
			name:  "waits deferred to the end, in order",
			steps: []spec{{"a", nil, "wait"}, {"b", nil, ""}, {"c", nil, "wait"}},
			want:  []string{"start a", "start b", "start c", "wait a", "wait c"},
		},
		{
			name: "a need is waited for before the step starts, once",
			steps: []spec{
				{"etcd", nil, "wait"}, {"containerd", nil, "wait"},
				{"apiserver", []string{"etcd"}, "wait"}, {"pause", []string{"containerd"}, ""},
				{"rbac", []string{"apiserver"}, ""}, {"scheduler", []string{"apiserver"}, ""},
				{"kubelet", []string{"pause"}, "wait"}, {"coredns", []string{"rbac"}, "wait"},
			},
			want: []string{
				"start etcd", "start containerd", "wait etcd", "start apiserver", "wait containerd", "start pause",
				"wait apiserver", "start rbac", "start scheduler", "start kubelet", "start coredns",
				"wait kubelet", "wait coredns",
			},
		},
		{
			name:    "a failed start names the step and stops the run",
			steps:   []spec{{"a", nil, "wait"}, {"b", nil, "fail-start"}, {"c", nil, ""}},
			want:    []string{"start a", "start b"},
			wantErr: "starting b: boom",
		},
		{
			name:    "a failed wait names the step",
			steps:   []spec{{"a", nil, "fail-wait"}, {"b", []string{"a"}, ""}},
			want:    []string{"start a", "wait a"},
			wantErr: "waiting for a: boom",
		},
		{
			name:    "a need that is no earlier step",
			steps:   []spec{{"a", []string{"b"}, ""}, {"b", nil, ""}},
			wantErr: "step a needs b, which is not an earlier step",
		},
		{
			name:    "a name twice",
			steps:   []spec{{"a", nil, ""}, {"a", nil, ""}},
			want:    []string{"start a"},
			wantErr: "step a is in the list twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			var steps []step
			for _, sp := range tt.steps {
				s := step{name: sp.name, needs: sp.needs, do: func(context.Context) error {
					log = append(log, "start "+sp.name)
					if sp.opts == "fail-start" {
						return boom
					}
					return nil
				}}
				if strings.HasSuffix(sp.opts, "wait") {
					s.wait = func(context.Context) error {
						log = append(log, "wait "+sp.name)
						if sp.opts == "fail-wait" {
							return boom
						}
						return nil
					}
				}
				steps = append(steps, s)
			}
			c := &Cluster{opts: Options{Log: io.Discard}}
			err := c.runSteps(context.Background(), steps)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr != "" && errors.Is(err, boom) != strings.HasSuffix(tt.wantErr, "boom") {
				t.Errorf("errors.Is(err, boom) = %v", errors.Is(err, boom))
			}
			if !slices.Equal(log, tt.want) {
				t.Errorf("order:\n got %q\nwant %q", log, tt.want)
			}
		})
	}
}
