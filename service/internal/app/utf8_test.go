package app

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends request bytes as they are, so a test can put what
// protobuf's own Marshal refuses (invalid UTF-8) on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// field is one length-delimited field on the wire.
func field(num protowire.Number, v string) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), []byte(v))
}

func join(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestInvalidUTF8IsInvalidArgument: a request whose string field is not
// UTF-8 is INVALID_ARGUMENT naming the field (grpc-go alone answers
// INTERNAL), counted in nova_auth_grpc_invalid_utf8_requests_total and in
// grpc_server_handled_total; valid requests beside them still work, and a
// request that is not protobuf at all keeps grpc-go's INTERNAL.
func TestInvalidUTF8IsInvalidArgument(t *testing.T) {
	e := newEnv(t, nil, nil)
	id := e.user(t, "u@example.com", "u", "users:read")
	const svc = "/nova.auth_service.AuthService/"
	for _, tc := range []struct {
		method string
		req    []byte
		code   codes.Code
		msg    string
	}{
		{"GetUser", field(1, "\xff\xfe"), codes.InvalidArgument, "user_id is not valid UTF-8"},
		{"GetUser", field(1, id[:8]+"\xc3\x28"+id[10:]), codes.InvalidArgument, "user_id is not valid UTF-8"},
		{"GetUser", field(1, id), codes.OK, ""},
		{"GetUser", field(1, "Ünïcödé"), codes.InvalidArgument, "is not a UUID"},
		{"GetUsersByIds", join(field(1, id), field(1, "\xed\xa0\x80")), codes.InvalidArgument, "user_ids is not valid UTF-8"},
		{"GetUsersByIds", join(field(1, id), field(1, id)), codes.OK, ""},
		{"VerifyToken", field(1, "eyJ\x80"), codes.InvalidArgument, "token is not valid UTF-8"},
		{"GetUserByEmail", field(1, "a\xffb@example.com"), codes.InvalidArgument, "email is not valid UTF-8"},
		{"CheckPermission", join(field(1, id), field(2, "users:\xc0\xafread")), codes.InvalidArgument, "permission is not valid UTF-8"},
		{"CheckPermission", join(field(1, id), field(2, "users:read")), codes.OK, ""},
		{"CheckUserExists", field(1, "\xff"), codes.InvalidArgument, "user_id is not valid UTF-8"},
		{"RecordFailedLogin", field(1, "\xff"), codes.InvalidArgument, "user_id is not valid UTF-8"},
		{"ListUsers", field(3, "\xff"), codes.InvalidArgument, "page_token is not valid UTF-8"},
		// Unknown fields are not strings: left alone as protobuf does.
		{"GetUser", join(field(1, id), field(99, "\xff")), codes.OK, ""},
		// Not protobuf (a truncated field): still grpc-go's INTERNAL.
		{"GetUser", []byte{0x0a, 0x10, 'a'}, codes.Internal, "failed to unmarshal"},
	} {
		var out []byte
		err := e.conn.Invoke(context.Background(), svc+tc.method, tc.req, &out, grpc.ForceCodec(rawCodec{}))
		st := status.Convert(err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s %q: %v %q; want %v containing %q", tc.method, tc.req, st.Code(), st.Message(), tc.code, tc.msg)
		}
	}
	// The same server keeps answering well-formed calls through the normal client.
	if _, err := e.client.GetUser(context.Background(), nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty GetUser after the bad ones: %v", err)
	}
	_, body := httpGet(t, e.httpURL+"/metrics")
	for _, want := range []string{
		`nova_auth_grpc_invalid_utf8_requests_total{grpc_method="GetUser",grpc_service="nova.auth_service.AuthService"} 2`,
		`nova_auth_grpc_invalid_utf8_requests_total{grpc_method="CheckPermission",grpc_service="nova.auth_service.AuthService"} 1`,
		`nova_auth_grpc_invalid_utf8_requests_total{grpc_method="ListUsers",grpc_service="nova.auth_service.AuthService"} 1`,
		`grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="VerifyToken",grpc_service="nova.auth_service.AuthService"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
