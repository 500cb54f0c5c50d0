package grpcserver

import (
	"context"
	"fmt"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// utf8Codec is grpc-go's proto codec, except that an AuthService request
// with a string field that is not UTF-8 is answered INVALID_ARGUMENT naming
// the field. grpc-go decodes a request before any interceptor runs and
// reports every codec error as INTERNAL ("failed to unmarshal"), even a
// status error, so the codec cannot choose the code itself. Instead it
// leaves such a request empty, remembers it, and reports success; the
// generated handler then passes that same message to the interceptor chain,
// whose first link (check) answers INVALID_ARGUMENT.
type utf8Codec struct {
	base encoding.CodecV2
	bad  sync.Map // proto.Message → field path that is not UTF-8
}

func newUTF8Codec() *utf8Codec { return &utf8Codec{base: encoding.GetCodecV2(encproto.Name)} }

// Name is the proto codec's: clients see no difference.
func (c *utf8Codec) Name() string { return c.base.Name() }

func (c *utf8Codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c *utf8Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	// Only AuthService requests reach check; health and reflection keep
	// grpc-go's answer.
	if !ok || m.ProtoReflect().Descriptor().ParentFile().Path() != authpb.File_nova_auth_service_auth_service_proto.Path() {
		return err
	}
	field := invalidUTF8Field(data.Materialize(), m.ProtoReflect().Descriptor())
	if field == "" {
		return err // malformed otherwise: grpc-go's INTERNAL
	}
	proto.Reset(m)
	c.bad.Store(m, field)
	return nil
}

// check is the interceptor that answers the requests Unmarshal remembered.
// It must run before any link that can return without calling the next,
// so that every remembered request is forgotten again. counted is told the
// method of each one, for the metrics.
func (c *utf8Codec) check(counted func(fullMethod string)) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if f, ok := c.bad.LoadAndDelete(req); ok {
			counted(info.FullMethod)
			return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("%s is not valid UTF-8: string fields must be UTF-8 text", f))
		}
		return h(ctx, req)
	}
}

// invalidUTF8Field walks the wire form of a message of type md and returns
// the name (a.b for a nested message) of the first string field that is not
// UTF-8, or "" when there is none or the bytes do not parse.
func invalidUTF8Field(b []byte, md protoreflect.MessageDescriptor) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		switch {
		case fd == nil:
		case fd.Kind() == protoreflect.StringKind && !utf8.Valid(v):
			return string(fd.Name())
		case fd.Kind() == protoreflect.MessageKind:
			if f := invalidUTF8Field(v, fd.Message()); f != "" {
				return string(fd.Name()) + "." + f
			}
		}
	}
	return ""
}
