package store

// SQLSTATE codes the store tells apart, from PostgreSQL's errcodes table
// (Appendix A of its manual). Named here so that classify reads as the
// conditions it handles rather than as five-character strings.
const (
	// sqlstateUniqueViolation: an INSERT hit a unique index (email or
	// username already taken, permission already granted).
	sqlstateUniqueViolation = "23505"
	// sqlstateCheckViolation: a CHECK constraint failed, e.g. a length bound
	// from limits.go.
	sqlstateCheckViolation = "23514"
	// sqlstateInvalidTextRepresentation: a value that does not parse as its
	// column type.
	sqlstateInvalidTextRepresentation = "22P02"
	// sqlstateStringDataRightTruncation: a string longer than its column.
	sqlstateStringDataRightTruncation = "22001"
	// sqlstateCharacterNotInRepertoire: bytes that are not valid in the
	// database encoding, such as a NUL.
	sqlstateCharacterNotInRepertoire = "22021"
	// sqlstateUntranslatableCharacter: a character the database encoding
	// cannot hold.
	sqlstateUntranslatableCharacter = "22P05"
	// sqlstateQueryCanceled: statement_timeout fired or the statement was
	// cancelled because its caller's context ended.
	sqlstateQueryCanceled = "57014"
	// sqlstateUndefinedTable: the table does not exist; for
	// schema_migrations, the database has never been migrated.
	sqlstateUndefinedTable = "42P01"
)

// SQLSTATE classes and subclasses (prefixes of a code) that mean the
// database cannot answer now but may later.
const (
	// sqlstateClassConnectionException: class 08, the connection failed or
	// was lost.
	sqlstateClassConnectionException = "08"
	// sqlstateClassInsufficientResources: class 53, out of connections,
	// memory or disk.
	sqlstateClassInsufficientResources = "53"
	// sqlstatePrefixOperatorShutdown: 57P01..57P05, the server is shutting
	// down, crashed, is starting up or dropped the database.
	sqlstatePrefixOperatorShutdown = "57P"
)
