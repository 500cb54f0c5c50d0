// Package rpcspan is what the service's server spans and the client
// library's client spans share: W3C trace context and baggage carried in
// gRPC metadata, the method's names and the status a span records.
package rpcspan

import (
	"strings"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Carrier is a propagation.TextMapCarrier over gRPC metadata (whose keys
// are lower case, as the W3C header names are).
type Carrier metadata.MD

// Get returns the first value of key.
func (c Carrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values with value.
func (c Carrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

// Keys lists the keys present.
func (c Carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Method splits "/pkg.Service/Method" into rpc.service and rpc.method.
func Method(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

// Attributes are a call's rpc.* attributes.
func Attributes(full string) []attribute.KeyValue {
	svc, m := Method(full)
	return []attribute.KeyValue{attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", svc), attribute.String("rpc.method", m)}
}

// SetStatus records a call's gRPC status on span: rpc.grpc.status_code
// always, and an error status as the semantic conventions for RPC say: on
// the client for every code but OK (to a caller NOT_FOUND is a failed
// call), on the server only for the codes that mean the server failed (a
// NOT_FOUND or INVALID_ARGUMENT answer is the service working). The
// description is the status message, which the service's errors.go keeps
// free of SQL, internals and secrets, so a trace may carry it.
func SetStatus(span trace.Span, st *status.Status, server bool) {
	span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(st.Code())))
	if st.Code() == codes.OK {
		return
	}
	if !server || ServerFault(st.Code()) {
		span.SetStatus(otelcodes.Error, st.Code().String()+": "+st.Message())
	}
}

// ServerFault reports whether a status code says the server, not the
// request, failed: the codes errors.go logs (Internal, Unavailable) and
// the others of that kind in the RPC semantic conventions.
func ServerFault(c codes.Code) bool {
	switch c {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}
