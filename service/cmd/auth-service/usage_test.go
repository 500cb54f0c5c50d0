package main

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// synopses returns the command forms of a usage listing: each line that
// starts with "auth-service ", up to the description after two spaces.
func synopses(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "auth-service ") {
			continue
		}
		form, _, _ := strings.Cut(line, "  ")
		out = append(out, form)
	}
	return out
}

// readmeSection returns the part of README.md under the heading, up to the
// next heading of the same level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", heading)
	}
	section, _, _ := strings.Cut(rest, "\n## ")
	return section
}

// usageForms are the command forms under the usage text's "Usage:".
func usageForms(t *testing.T) []string {
	t.Helper()
	_, list, ok := strings.Cut(usage, "\nUsage:\n")
	if !ok {
		t.Fatal("usage has no \"Usage:\" line")
	}
	return synopses(list)
}

// TestUsageMatchesREADME: `auth-service help` and the README's "The binary"
// list show the same command forms, in the same order.
func TestUsageMatchesREADME(t *testing.T) {
	got, want := usageForms(t), synopses(readmeSection(t, "## The binary"))
	if len(want) == 0 {
		t.Fatal("README.md's \"The binary\" section lists no commands")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("usage and README.md list different commands:\nusage:\n  %s\nREADME.md:\n  %s",
			strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestUsageNamesEveryCommand: the usage lists exactly the commands run
// dispatches, and so does the README's folder map.
func TestUsageNamesEveryCommand(t *testing.T) {
	var dispatched []string
	for name := range commands {
		dispatched = append(dispatched, name)
	}
	sort.Strings(dispatched)

	var listed []string
	for _, form := range usageForms(t) {
		name := strings.Trim(strings.Fields(form)[1], "[]")
		if !strings.HasPrefix(name, "-") && !slices.Contains(listed, name) {
			listed = append(listed, name)
		}
	}
	sort.Strings(listed)
	if !slices.Equal(listed, dispatched) {
		t.Errorf("usage lists %v; run dispatches %v", listed, dispatched)
	}

	folders := readmeSection(t, "## Layout")
	m := regexp.MustCompile(`cmd/auth-service/\s.*\(([a-z |]+)\)`).FindStringSubmatch(folders)
	if m == nil {
		t.Fatal("README.md's layout does not list the binary's commands after cmd/auth-service/")
	}
	inREADME := strings.Split(strings.ReplaceAll(m[1], " ", ""), "|")
	sort.Strings(inREADME)
	if !slices.Equal(inREADME, dispatched) {
		t.Errorf("README.md's layout lists %v; run dispatches %v", inREADME, dispatched)
	}
}

var (
	synopsisFlag = regexp.MustCompile(`--([a-z][a-z-]*)`)
	definedFlag  = regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
)

// TestUsageFlagsAreAccepted: each form in the usage names exactly the flags
// its command defines, as the command's own -h lists them.
func TestUsageFlagsAreAccepted(t *testing.T) {
	for _, form := range usageForms(t) {
		var listed []string
		for _, m := range synopsisFlag.FindAllStringSubmatch(form, -1) {
			listed = append(listed, m[1])
		}
		if len(listed) == 0 || form == "auth-service --version" {
			continue // serve and migrate take no flags and ignore arguments
		}
		var words []string
		for _, w := range strings.Fields(form)[1:] {
			if strings.ContainsAny(w, "-[(") {
				break
			}
			words = append(words, w)
		}
		var stdout, stderr bytes.Buffer
		code := run(append(words, "-h"), strings.NewReader(""), &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v -h: exit %d, want 2\n%s", words, code, stderr.String())
			continue
		}
		var defined []string
		for _, m := range definedFlag.FindAllStringSubmatch(stderr.String(), -1) {
			defined = append(defined, m[1])
		}
		sort.Strings(listed)
		sort.Strings(defined)
		if !slices.Equal(listed, defined) {
			t.Errorf("%q names flags %v; the command accepts %v", form, listed, defined)
		}
	}
}
