-- Identity is the canonical email (trimmed, NFC, case-folded: internal/email
-- Canonical), computed in Go and stored, not lower(email): lower() follows
-- the database's collation, so under C.UTF-8 a Kelvin sign matched "k" and
-- under C "É"/"é" and NFC/NFD spellings were separate users. users.email
-- keeps the address as given (trimmed), which the API returns.
-- Hold off writers while existing rows are converted, so none is inserted
-- without a canonical form between the fill and the NOT NULL.
LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE users ADD COLUMN email_canonical text;

-- migrate:go fill_email_canonical
-- Fills email_canonical for every row and fails, naming the ids, when two
-- live users share a canonical email: merging accounts is an operator's call.

ALTER TABLE users ALTER COLUMN email_canonical SET NOT NULL;
DROP INDEX users_email_lower_live_key;
CREATE UNIQUE INDEX users_email_canonical_live_key ON users (email_canonical) WHERE deleted_at IS NULL;
