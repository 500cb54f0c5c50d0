package store

import (
	"time"

	"github.com/google/uuid"
)

// UserKey is a user's place in ListUsers' order (created_at DESC, id DESC):
// the key of a page's last user, from which the next page starts.
type UserKey struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// Key is u's place in ListUsers' order.
func (u User) Key() UserKey { return UserKey{CreatedAt: u.CreatedAt, ID: u.ID} }
