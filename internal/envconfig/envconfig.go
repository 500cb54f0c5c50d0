// Package envconfig reads settings from environment variables through a table
// of rows, one per variable. The same rows give each variable's default, the
// parsing, the error a person reads when a value is wrong, and the Markdown
// table the READMEs show, so none of these can drift from the others.
package envconfig

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Var is one environment variable that sets part of a T.
type Var[T any] struct {
	// Name is the environment variable.
	Name string
	// Default is used when the variable is unset or blank; it is parsed like
	// a value a person gave, so it is written once, as text.
	Default string
	// Help says what the variable does, in a sentence for the docs.
	Help string
	// Secret values are never shown: an error says "(hidden)" in their
	// place and the Markdown table shows no default.
	Secret bool
	// Verbatim values are used as given; others are trimmed of surrounding
	// white space. For PEM text, whose trailing newline belongs to it.
	Verbatim bool
	// Parse stores value in dst, or says what the variable accepts. It should
	// leave dst unchanged when it fails, so a default set before stays.
	Parse func(dst *T, value string) error
}

// Load sets every variable of vars on dst, read through getenv (os.Getenv
// when nil); an unset or blank variable takes its default. It returns one
// error per invalid variable, in the order of vars, each naming the variable
// and the value it had.
func Load[T any](dst *T, vars []Var[T], getenv func(string) string) []error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	for _, v := range vars {
		raw := getenv(v.Name)
		if !v.Verbatim {
			raw = strings.TrimSpace(raw)
		}
		val := raw
		if val == "" {
			val = v.Default
		}
		if err := v.Parse(dst, val); err != nil {
			errs = append(errs, v.invalid(raw, err))
		}
	}
	return errs
}

// invalid is the error for a value Parse refused: NAME="value": what it
// accepts. A secret value is replaced by "(hidden)", in Parse's words too.
func (v Var[T]) invalid(raw string, err error) error {
	if !v.Secret {
		return fmt.Errorf("%s=%q: %w", v.Name, raw, err)
	}
	if raw != "" && strings.Contains(err.Error(), raw) {
		err = errors.New(strings.ReplaceAll(err.Error(), raw, hidden))
	}
	return fmt.Errorf("%s=%q: %w", v.Name, hidden, err)
}

const hidden = "(hidden)"

// Names returns the name of every variable in vars, in order.
func Names[T any](vars []Var[T]) []string {
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = v.Name
	}
	return out
}

// Markdown is the table of vars the READMEs show: name, default (— when there
// is none or it is secret) and help, one row per variable, in order.
func Markdown[T any](vars []Var[T]) string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Meaning |\n|---|---|---|\n")
	for _, v := range vars {
		d := "—"
		if v.Default != "" && !v.Secret {
			d = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, d, strings.ReplaceAll(v.Help, "|", `\|`))
	}
	return b.String()
}

// Error lists every invalid variable of one configuration, one per line, so a
// person fixing it sees every mistake at once.
type Error struct {
	// Source, when set, begins the message ("clients"), so a program that
	// loads several configurations says whose is wrong.
	Source string
	Errs   []error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source + ": ")
	}
	b.WriteString("invalid configuration:")
	for _, err := range e.Errs {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As each invalid variable's error.
func (e *Error) Unwrap() []error { return e.Errs }
