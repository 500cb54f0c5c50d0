package grpcserver

import (
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// FuzzInvalidUTF8Field: the wire walk never panics on any bytes, and when
// it names a field protobuf's own decoding refuses the message too, while a
// message it passes that protobuf refuses is not a UTF-8 matter.
func FuzzInvalidUTF8Field(f *testing.F) {
	str := func(num protowire.Number, v string) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), []byte(v))
	}
	f.Add(str(2, "users:read"))
	f.Add(str(2, "users:\xff"))
	f.Add(append(str(1, "id"), str(2, "\xc0\xaf")...))
	f.Add(protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.VarintType), 7))
	f.Add([]byte{0x0a, 0x10, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &authpb.CheckPermissionRequest{}
		field := invalidUTF8Field(b, m.ProtoReflect().Descriptor())
		err := proto.Unmarshal(b, m)
		if field != "" && err == nil {
			t.Fatalf("%q: walk says %s is not UTF-8, protobuf accepts it", b, field)
		}
		if field != "" && field != "user_id" && field != "permission" {
			t.Fatalf("%q: walk names %q, not a string field", b, field)
		}
		if field == "" && err == nil && (!utf8.ValidString(m.GetUserId()) || !utf8.ValidString(m.GetPermission())) {
			t.Fatalf("%q: invalid UTF-8 decoded and not found", b)
		}
	})
}
