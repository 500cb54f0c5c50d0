package store

// Longest values the schema accepts: the CHECK constraints of
// migrations/0001_init.sql (limits_test.go keeps the two equal). The gRPC
// handlers and the operator commands check them first, so an oversized value
// gets a message naming the field instead of a constraint failure. They count
// characters in PostgreSQL and bytes in Go, so a value within them in bytes
// always fits.
const (
	MaxEmailLen      = 254 // users.email; also RFC 5321's limit on a path
	MaxUsernameLen   = 64  // users.username
	MaxPermissionLen = 128 // user_permissions.permission
)
