// Package httpserver serves the HTTP side of the service: liveness,
// readiness, Prometheus metrics, and a JSON gateway to the AuthService
// methods.
package httpserver

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Invoker runs an AuthService method by name (grpcserver.Invoker).
type Invoker interface {
	Invoke(ctx context.Context, method string, dec func(any) error) (any, error)
}

// Ready reports whether the service can answer calls, and why not (or,
// when it can, what is degraded).
type Ready func() (bool, string)

const maxBody = 1 << 20

// Options are the checks the /v1 gateway makes before it runs a method.
type Options struct {
	// AllowedHosts (HTTP_ALLOWED_HOSTS), when not empty, are the host names
	// the /v1 gateway answers, compared with the request's Host without its
	// port; any other Host gets 421. It stops DNS rebinding: a page on
	// attacker.example whose name now resolves to this service would
	// otherwise read /v1/users from the victim's browser. /health,
	// /readiness and /metrics answer any Host, because kubelet probes and
	// Prometheus address the pod IP.
	AllowedHosts []string
}

// New builds the HTTP handler. With gather nil it serves no /metrics: the
// metrics are then on a listener of their own (Metrics), so the REST port can
// be exposed outside the cluster without them.
func New(ready Ready, gather prometheus.Gatherer, inv Invoker, opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readiness", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := ready()
		switch {
		case !ok:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why})
		case why != "":
			// Ready but degraded (the database is down): still 200, so a
			// shared outage does not empty the Service.
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "warning": why})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	if gather != nil {
		mux.Handle("GET /metrics", Metrics(gather))
	}

	g := gateway{inv: inv}
	for _, h := range opts.AllowedHosts {
		g.hosts = append(g.hosts, HostName(h))
	}
	// Every method as POST with the request message as JSON. No CORS: no
	// Access-Control-* header is ever sent and OPTIONS is not routed (405),
	// so a browser never lets another origin's page send the JSON POST or
	// read a /v1 answer.
	mux.HandleFunc("POST /v1/auth/{method}", g.checkHost(g.post))
	// Friendly reads.
	mux.HandleFunc("GET /v1/users/{id}", g.checkHost(g.get("GetUser", func(r *http.Request) string {
		return `{"user_id":` + quote(r.PathValue("id")) + `}`
	})))
	mux.HandleFunc("GET /v1/users/{id}/permissions", g.checkHost(g.get("GetUserPermissions", func(r *http.Request) string {
		return `{"user_id":` + quote(r.PathValue("id")) + `}`
	})))
	mux.HandleFunc("GET /v1/users", g.checkHost(g.get("ListUsers", func(r *http.Request) string {
		q := r.URL.Query()
		return `{"limit":` + num(q.Get("limit")) + `,"offset":` + num(q.Get("offset")) + `,"page_token":` + quote(q.Get("page_token")) + `}`
	})))
	return mux
}

// HostName is the host part of a Host header or an HTTP_ALLOWED_HOSTS entry
// as the allow-list compares it: without port or IPv6 brackets, lower case,
// without a trailing dot.
func HostName(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// Metrics builds the handler of the metrics listener (METRICS_PORT): GET
// /metrics and nothing else. A scraper that asks for OpenMetrics gets it,
// with the latency histograms' exemplars (trace IDs).
func Metrics(gather prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	return mux
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// num passes a query number through as a JSON string, which protojson
// accepts for integers and rejects with a clear message when not a number.
func num(s string) string {
	if s == "" {
		return "0"
	}
	return quote(s)
}

type gateway struct {
	inv   Invoker
	hosts []string // HostName of each allowed host; empty: any
}

// checkHost answers 421 Misdirected Request to a Host not in the
// allow-list: this server is not the one that name is meant to reach.
func (g gateway) checkHost(h http.HandlerFunc) http.HandlerFunc {
	if len(g.hosts) == 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(g.hosts, HostName(r.Host)) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"code": codes.PermissionDenied.String(),
				"message": "host " + quote(r.Host) + " is not served here: the request must name one of the hosts in HTTP_ALLOWED_HOSTS"})
			return
		}
		h(w, r)
	}
}

// jsonContentType reports why a POST's Content-Type is not JSON, or "".
// Requiring application/json makes a cross-site POST non-simple: a browser
// must ask with an OPTIONS preflight first, which is never granted. A
// text/plain or form POST, which any web page can send, would otherwise run
// RecordFailedLogin and lock an account.
func jsonContentType(ct string) string {
	if ct == "" {
		return "Content-Type is missing: send the request as application/json"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return "Content-Type " + quote(ct) + " is not accepted: send the request as application/json"
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "charset " + quote(cs) + " is not accepted: JSON requests are UTF-8"
	}
	return ""
}

func (g gateway) post(w http.ResponseWriter, r *http.Request) {
	if why := jsonContentType(r.Header.Get("Content-Type")); why != "" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"code": codes.InvalidArgument.String(), "message": why})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, status.Error(codes.InvalidArgument, "request body too large or unreadable"))
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	g.call(w, r, r.PathValue("method"), body)
}

func (g gateway) get(method string, body func(*http.Request) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { g.call(w, r, method, []byte(body(r))) }
}

func (g gateway) call(w http.ResponseWriter, r *http.Request, method string, body []byte) {
	dec := func(m any) error {
		if err := protojson.Unmarshal(body, m.(proto.Message)); err != nil {
			return status.Error(codes.InvalidArgument, "request JSON does not match "+method+"Request: "+err.Error())
		}
		return nil
	}
	ctx := r.Context()
	if r.TLS != nil {
		// The client certificate the handshake verified, where the caller
		// policy looks for it on a gRPC call: both paths see the same caller.
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: tcpAddr(r.RemoteAddr), AuthInfo: credentials.TLSInfo{State: *r.TLS}})
	}
	resp, err := g.inv.Invoke(ctx, method, dec)
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(resp.(proto.Message))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(out) //nolint:errcheck // client gone
}

// tcpAddr is the client's address for the peer, nil if unparsable.
func tcpAddr(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return nil
	}
	return a
}

// httpStatus maps gRPC codes to HTTP as grpc-gateway does.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.NotFound, codes.Unimplemented:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	st, ok := status.FromError(err)
	if !ok {
		st = status.New(codes.Internal, "internal error")
	}
	writeJSON(w, httpStatus(st.Code()), map[string]string{"code": st.Code().String(), "message": st.Message()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // client gone
}
