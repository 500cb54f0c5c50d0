package envconfig

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// settings is what the test rows fill in.
type settings struct {
	Port  int
	Name  string
	On    bool
	Token string
	PEM   string
	Items []string
}

// port is a parser that, like a careless one, quotes the value it refuses.
func port(s *settings, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not a port from 1 to 65535", v)
	}
	s.Port = n
	return nil
}

var testVars = []Var[settings]{
	{Name: "PORT", Default: "8080", Help: "Port to listen on.", Parse: port},
	{Name: "NAME", Default: "nova", Help: "Name | alias.",
		Parse: func(s *settings, v string) error { s.Name = v; return nil }},
	{Name: "ON", Default: "false", Help: "Switch.",
		Parse: func(s *settings, v string) error { return Bool(&s.On, v) }},
	{Name: "TOKEN", Default: "default-secret", Help: "A secret.", Secret: true,
		Parse: func(s *settings, v string) error {
			if strings.HasPrefix(v, "bad") {
				return fmt.Errorf("%q is not a token; a token is 32 characters", v)
			}
			s.Token = v
			return nil
		}},
	{Name: "PEM", Help: "Text kept as given.", Verbatim: true,
		Parse: func(s *settings, v string) error { s.PEM = v; return nil }},
	{Name: "ITEMS", Default: "a,b", Help: "A list.",
		Parse: func(s *settings, v string) error { s.Items = List(v); return nil }},
}

func TestLoad(t *testing.T) {
	defaults := settings{Port: 8080, Name: "nova", Token: "default-secret", Items: []string{"a", "b"}}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		want     settings // when wantErrs is empty
		wantErrs []string // every error, in the order of the rows
	}{
		{name: "unset takes the defaults", want: defaults},
		{name: "blank takes the defaults", env: map[string]string{"PORT": "  ", "NAME": "\t", "ITEMS": " "}, want: defaults},
		{name: "values are trimmed", env: map[string]string{"PORT": " 9090\n", "NAME": " x ", "ON": "true", "ITEMS": " c, ,d ,"},
			want: settings{Port: 9090, Name: "x", On: true, Token: "default-secret", Items: []string{"c", "d"}}},
		{name: "verbatim value kept as given", env: map[string]string{"PEM": "  -----BEGIN X-----\n"},
			want: settings{Port: 8080, Name: "nova", Token: "default-secret", PEM: "  -----BEGIN X-----\n", Items: []string{"a", "b"}}},
		{name: "secret taken", env: map[string]string{"TOKEN": "s3"},
			want: settings{Port: 8080, Name: "nova", Token: "s3", Items: []string{"a", "b"}}},
		{name: "bad port", env: map[string]string{"PORT": "http"},
			wantErrs: []string{`PORT="http": "http" is not a port from 1 to 65535`}},
		{name: "bad bool", env: map[string]string{"ON": "maybe"},
			wantErrs: []string{`ON="maybe": must be true or false`}},
		{name: "bad secret is hidden, in the parser's words too", env: map[string]string{"TOKEN": "bad-hunter2"},
			wantErrs: []string{`TOKEN="(hidden)": "(hidden)" is not a token; a token is 32 characters`}},
		{name: "every bad variable at once, trimmed value shown", env: map[string]string{"PORT": " 0 ", "ON": "yes please", "TOKEN": "bad"},
			wantErrs: []string{
				`PORT="0": "0" is not a port from 1 to 65535`,
				`ON="yes please": must be true or false`,
				`TOKEN="(hidden)": "(hidden)" is not a token; a token is 32 characters`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got settings
			errs := Load(&got, testVars, func(k string) string { return tc.env[k] })
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
			}
			if !reflect.DeepEqual(msgs, tc.wantErrs) {
				t.Fatalf("errors:\n got %q\nwant %q", msgs, tc.wantErrs)
			}
			for _, m := range msgs {
				if tok := tc.env["TOKEN"]; tok != "" && strings.Contains(m, tok) {
					t.Errorf("secret %q in %q", tok, m)
				}
			}
			if len(tc.wantErrs) == 0 && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLoadNilGetenvReadsTheEnvironment(t *testing.T) {
	t.Setenv("PORT", "7070")
	var got settings
	if errs := Load(&got, testVars, nil); errs != nil || got.Port != 7070 {
		t.Fatalf("port %d, errors %v", got.Port, errs)
	}
}

func TestError(t *testing.T) {
	a, b := errors.New(`A="x": must be y`), errors.New(`B="z": must be w`)
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Errs: []error{a, b}}, "invalid configuration:\n  A=\"x\": must be y\n  B=\"z\": must be w"},
		{&Error{Source: "clients", Errs: []error{a}}, "clients: invalid configuration:\n  A=\"x\": must be y"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, a) {
			t.Errorf("errors.Is does not find a variable's error in %v", tc.err)
		}
	}
}

func TestMarkdown(t *testing.T) {
	want := "| Variable | Default | Meaning |\n" +
		"|---|---|---|\n" +
		"| `PORT` | `8080` | Port to listen on. |\n" +
		"| `NAME` | `nova` | Name \\| alias. |\n" +
		"| `ON` | `false` | Switch. |\n" +
		"| `TOKEN` | — | A secret. |\n" +
		"| `PEM` | — | Text kept as given. |\n" +
		"| `ITEMS` | `a,b` | A list. |\n"
	got := Markdown(testVars)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "default-secret") {
		t.Error("a secret's default is in the table")
	}
}

func TestNames(t *testing.T) {
	if got := strings.Join(Names(testVars), " "); got != "PORT NAME ON TOKEN PEM ITEMS" {
		t.Errorf("Names = %s", got)
	}
}

func TestBool(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"true", true, false}, {"1", true, false}, {"T", true, false},
		{"false", false, false}, {"0", false, false},
		{"yes", false, true}, {"", false, true}, {"on", false, true},
	} {
		got := true // a refused value must leave it unchanged
		err := Bool(&got, tc.in)
		if tc.wantErr {
			if err == nil || err.Error() != "must be true or false" || !got {
				t.Errorf("Bool(%q) = %v, %v", tc.in, got, err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("Bool(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestList(t *testing.T) {
	for in, want := range map[string][]string{
		"":           nil,
		" , ,":       nil,
		"a":          {"a"},
		" a, b ,,c ": {"a", "b", "c"},
	} {
		if got := List(in); !reflect.DeepEqual(got, want) {
			t.Errorf("List(%q) = %q, want %q", in, got, want)
		}
	}
}
