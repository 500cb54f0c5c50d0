-- Users and their permissions. Rows are never deleted by the service:
-- deleted_at marks a soft-deleted user, invisible to every RPC.
CREATE TABLE users (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email                 text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    username              text NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    password_hash         text NOT NULL,
    is_active             boolean NOT NULL DEFAULT true,
    failed_login_attempts integer NOT NULL DEFAULT 0 CHECK (failed_login_attempts >= 0),
    locked_until          timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);

-- GetUserByEmail matches case-insensitively; one live account per address.
CREATE UNIQUE INDEX users_email_lower_live_key ON users (lower(email)) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_username_lower_live_key ON users (lower(username)) WHERE deleted_at IS NULL;
-- ListUsers: newest first, id breaks ties so pages are stable.
CREATE INDEX users_created_at_id_live_idx ON users (created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE user_permissions (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission text NOT NULL CHECK (length(permission) BETWEEN 1 AND 128),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, permission)
);
