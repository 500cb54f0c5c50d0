package grpcserver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/nova-auth/nova-auth/service/internal/store"
)

// pageToken is what ListUsers' next_page_token carries: the place of the
// page's last user in the list order, so the next page starts after it.
// Opaque to clients (base64url of this JSON); V lets the format change.
type pageToken struct {
	V int    `json:"v"`
	C int64  `json:"c"` // created_at in Unix microseconds, PostgreSQL's precision
	I string `json:"i"` // id
}

const (
	pageTokenVersion = 1
	maxPageTokenLen  = 200 // a real one is about 100 characters
)

func encodePageToken(k store.UserKey) string {
	b, _ := json.Marshal(pageToken{V: pageTokenVersion, C: k.CreatedAt.UnixMicro(), I: k.ID.String()})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken reads a token encodePageToken made. Anything else, an
// edited one included, is INVALID_ARGUMENT: only a token that encodes back
// to the same text is accepted.
func decodePageToken(s string) (store.UserKey, error) {
	bad := invalid("page_token is not a next_page_token this service issued: pass next_page_token back unchanged, or leave page_token empty to start from the first page")
	if len(s) > maxPageTokenLen {
		return store.UserKey{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.UserKey{}, bad
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var t pageToken
	if err := dec.Decode(&t); err != nil || t.V != pageTokenVersion {
		return store.UserKey{}, bad
	}
	id, err := uuid.Parse(t.I)
	if err != nil {
		return store.UserKey{}, bad
	}
	k := store.UserKey{CreatedAt: time.UnixMicro(t.C).UTC(), ID: id}
	if encodePageToken(k) != s {
		return store.UserKey{}, bad
	}
	return k, nil
}
