-- Migration 0005's trigger, its payload stamped with the time the trigger
-- fired ("ts", microseconds since the Unix epoch, clock_timestamp(): the end
-- of the changing statement, just before its commit when it is a
-- transaction of its own), so that a replica can measure how long the
-- notification took to reach it and be applied
-- (nova_auth_cache_notify_delay_seconds). A replica of an older version
-- ignores the field; a flush ('*') carries no stamp and is not measured.
CREATE OR REPLACE FUNCTION nova_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cols    text := CASE TG_TABLE_NAME WHEN 'users' THEN 'id, email_canonical' ELSE 'user_id, NULL::text' END;
    rows    text := CASE TG_OP
                        WHEN 'INSERT' THEN 'SELECT ' || cols || ' FROM new_rows'
                        WHEN 'DELETE' THEN 'SELECT ' || cols || ' FROM old_rows'
                        ELSE 'SELECT ' || cols || ' FROM old_rows UNION ALL SELECT ' || cols || ' FROM new_rows' END;
    ids     uuid[];
    emails  text[];
    payload text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('nova_auth_cache', '*');
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT array_agg(i), array_agg(e) FROM (' || rows || ') r(i, e)' INTO ids, emails;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    payload := json_build_object('t', TG_TABLE_NAME, 'u', ids, 'e', array_remove(emails, NULL),
                               'ts', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)::text;
    -- PostgreSQL caps a payload below 8000 bytes; past 7000 the flush is
    -- cheaper than the list anyway.
    IF octet_length(payload) > 7000 THEN
        payload := '*';
    END IF;
    PERFORM pg_notify('nova_auth_cache', payload);
    RETURN NULL;
END $$;
