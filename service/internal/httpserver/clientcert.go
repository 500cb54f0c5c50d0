package httpserver

import (
	"net/http"
	"slices"

	"google.golang.org/grpc/codes"
)

// RequireClientCert answers 401 to a request that came without a verified
// client certificate, except on the open paths. With mutual TLS the HTTP
// handshake admits a client without a certificate (one with a bad
// certificate is refused there) so that kubelet probes, which cannot
// present one, reach /health and /readiness; everything else, the gateway
// above all, needs the certificate as gRPC does.
func RequireClientCert(h http.Handler, open ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) && !slices.Contains(open, r.URL.Path) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"code": codes.Unauthenticated.String(),
				"message": "a client certificate signed by the service's client CA (TLS_CLIENT_CA_FILE) is required"})
			return
		}
		h.ServeHTTP(w, r)
	})
}
