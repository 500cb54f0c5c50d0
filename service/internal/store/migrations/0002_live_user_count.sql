-- ListUsers' total_count read from one row kept exact by a trigger, instead
-- of counting every live user on every call (O(users) per page).
-- Hold off writers until the trigger exists, so no user is created between
-- the initial count and the trigger.
LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE user_counts (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    live_users bigint  NOT NULL CHECK (live_users >= 0)
);
INSERT INTO user_counts (live_users) SELECT count(*) FROM users WHERE deleted_at IS NULL;

CREATE FUNCTION users_count_live() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta bigint := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
        delta := delta + 1;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.deleted_at IS NULL THEN
        delta := delta - 1;
    END IF;
    IF delta <> 0 THEN
        UPDATE user_counts SET live_users = live_users + delta;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_count_live
    AFTER INSERT OR DELETE OR UPDATE OF deleted_at ON users
    FOR EACH ROW EXECUTE FUNCTION users_count_live();
