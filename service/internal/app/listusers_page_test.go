package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/service/internal/grpcserver"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// listAll pages through ListUsers by next_page_token and returns the ids
// in order and the number of calls.
func listAll(t *testing.T, e *env, limit int32) ([]string, int) {
	t.Helper()
	var ids []string
	token, calls := "", 0
	for {
		r, err := e.client.ListUsers(context.Background(), &authpb.ListUsersRequest{Limit: limit, PageToken: token})
		if err != nil {
			t.Fatalf("page %d: %v", calls, err)
		}
		calls++
		for _, u := range r.GetUsers() {
			ids = append(ids, u.GetId())
		}
		if r.GetNextPageToken() == "" {
			return ids, calls
		}
		if len(r.GetUsers()) != int(limit) {
			t.Fatalf("page %d has %d users and a next_page_token; want a full page of %d", calls, len(r.GetUsers()), limit)
		}
		token = r.GetNextPageToken()
		if calls > 100 {
			t.Fatal("next_page_token never ends")
		}
	}
}

// TestListUsersKeysetPages: next_page_token pages through every visible
// user once, in the same order as one big offset page, ties in created_at
// broken by id; deleted users drop out; total_count is unchanged.
func TestListUsersKeysetPages(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	for i := range 23 {
		e.user(t, fmt.Sprintf("p%d@example.com", i), fmt.Sprintf("p%d", i))
	}
	// Ten users share one created_at: the id alone orders them.
	if _, err := e.st.Pool().Exec(ctx, `UPDATE users SET created_at = '2024-01-02 03:04:05.123456+00'
		WHERE id IN (SELECT id FROM users ORDER BY id LIMIT 10)`); err != nil {
		t.Fatal(err)
	}
	all, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if all.GetNextPageToken() != "" || all.GetTotalCount() != 23 || len(all.GetUsers()) != 23 {
		t.Fatalf("one page of all: %d users, total %d, next %q", len(all.GetUsers()), all.GetTotalCount(), all.GetNextPageToken())
	}
	var want []string
	for _, u := range all.GetUsers() {
		want = append(want, u.GetId())
	}
	for _, tc := range []struct {
		limit int32
		calls int
	}{{1, 23}, {5, 5}, {7, 4}, {22, 2}, {23, 1}, {100, 1}} {
		got, calls := listAll(t, e, tc.limit)
		if strings.Join(got, ",") != strings.Join(want, ",") || calls != tc.calls {
			t.Errorf("limit %d: %d calls, ids\n %v\nwant %d calls,\n %v", tc.limit, calls, got, tc.calls, want)
		}
	}
	// The offset pages carry a token too: a client can switch to it.
	r, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 5, Offset: 5})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 5, PageToken: r.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if r2.GetTotalCount() != 23 || len(r2.GetUsers()) != 5 || r2.GetUsers()[0].GetId() != want[10] {
		t.Errorf("page after offset 5: %d users from %s, total %d; want 5 from %s", len(r2.GetUsers()), r2.GetUsers()[0].GetId(), r2.GetTotalCount(), want[10])
	}
	// A user deleted between two pages drops out; the next page starts
	// after the last one shown all the same.
	if _, err := e.st.Pool().Exec(ctx, `UPDATE users SET deleted_at = now() WHERE id = $1`, want[15]); err != nil {
		t.Fatal(err)
	}
	// Made in SQL, behind the service's back as another replica would: the
	// read cache shows it once the change's notification arrives.
	var r3 *authpb.ListUsersResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if r3, err = e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 5, PageToken: r2.GetNextPageToken()}); err != nil {
			t.Fatal(err)
		}
		if r3.GetTotalCount() != 23 || time.Now().After(deadline) {
			break
		}
	}
	var got []string
	for _, u := range r3.GetUsers() {
		got = append(got, u.GetId())
	}
	if strings.Join(got, ",") != strings.Join(append(append([]string{}, want[16:20]...), want[20]), ",") || r3.GetTotalCount() != 22 {
		t.Errorf("after a delete: %v total %d; want %v total 22", got, r3.GetTotalCount(), append(append([]string{}, want[16:20]...), want[20]))
	}
	// The gateway passes page_token through.
	code, _, m := send(t, http.MethodGet, e.httpURL+"/v1/users?limit=5&page_token="+url.QueryEscape(r.GetNextPageToken()), "", nil)
	if users, _ := m["users"].([]any); code != 200 || len(users) != 5 || users[0].(map[string]any)["id"] != want[10] || m["next_page_token"] == "" {
		t.Errorf("GET /v1/users?page_token= = %d %v", code, m)
	}
}

// TestListUsersOffsetCapAndBadTokens: offsets past MaxListOffset and
// page tokens the service did not issue are INVALID_ARGUMENT with a message
// that says what to send instead.
func TestListUsersOffsetCapAndBadTokens(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	e.user(t, "a@example.com", "a")
	e.user(t, "b@example.com", "b")
	first, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	good := first.GetNextPageToken()
	raw, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil {
		t.Fatalf("next_page_token %q is not base64url: %v", good, err)
	}
	reenc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	const tokenMsg = "page_token is not a next_page_token this service issued"
	for _, tc := range []struct {
		name   string
		offset int32
		token  string
		code   codes.Code
		msg    string
	}{
		{"offset at the cap", grpcserver.MaxListOffset, "", codes.OK, ""},
		{"offset above the cap", grpcserver.MaxListOffset + 1, "", codes.InvalidArgument, "offset 10001 is beyond 10000: page further with page_token"},
		{"offset 2^31-1", 1<<31 - 1, "", codes.InvalidArgument, "page further with page_token"},
		{"negative offset", -1, "", codes.InvalidArgument, "offset -1 is negative"},
		{"token", 0, good, codes.OK, ""},
		{"token and offset", 1, good, codes.InvalidArgument, "page_token and offset are both set"},
		{"not base64", 0, "!!!", codes.InvalidArgument, tokenMsg},
		{"padded base64", 0, good + "=", codes.InvalidArgument, tokenMsg},
		{"std base64 of it", 0, base64.StdEncoding.EncodeToString(raw), codes.InvalidArgument, tokenMsg},
		{"not JSON", 0, reenc("hello"), codes.InvalidArgument, tokenMsg},
		{"trailing data", 0, reenc(string(raw) + "{}"), codes.InvalidArgument, tokenMsg},
		{"extra field", 0, reenc(strings.Replace(string(raw), `{`, `{"x":1,`, 1)), codes.InvalidArgument, tokenMsg},
		{"other version", 0, reenc(strings.Replace(string(raw), `"v":1`, `"v":2`, 1)), codes.InvalidArgument, tokenMsg},
		{"id not a UUID", 0, reenc(`{"v":1,"c":1700000000000000,"i":"nope"}`), codes.InvalidArgument, tokenMsg},
		{"id in upper case", 0, reenc(strings.ToUpper(string(raw))), codes.InvalidArgument, tokenMsg},
		{"time a string", 0, reenc(`{"v":1,"c":"1700000000000000","i":"` + unknownID + `"}`), codes.InvalidArgument, tokenMsg},
		{"too long", 0, strings.Repeat("A", 400), codes.InvalidArgument, tokenMsg},
		{"well-formed, made by hand", 0, reenc(`{"v":1,"c":1700000000000000,"i":"` + unknownID + `"}`), codes.OK, ""},
	} {
		_, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 1, Offset: tc.offset, PageToken: tc.token})
		st := status.Convert(err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s: %v %q; want %v containing %q", tc.name, st.Code(), st.Message(), tc.code, tc.msg)
		}
	}
	// Over the gateway too.
	code, _, m := send(t, http.MethodGet, e.httpURL+"/v1/users?offset=20000", "", nil)
	if msg, _ := m["message"].(string); code != 400 || !strings.Contains(msg, "page_token") {
		t.Errorf("GET /v1/users?offset=20000 = %d %v", code, m)
	}
}
