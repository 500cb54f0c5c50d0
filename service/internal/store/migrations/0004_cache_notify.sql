-- Every replica caches user and permission reads in memory and evicts on a
-- notification on channel nova_auth_cache (see internal/cache). Triggers,
-- not the service's code, send them, so a change made directly in SQL by an
-- operator evicts too. One notification per statement, sent at commit:
--   {"t":table,"u":[user ids],"e":[canonical emails]}
--                                            evict these keys (and, for
--                                            users, every ListUsers page);
--   *                                        evict everything (TRUNCATE, or
--                                            a statement touching too many
--                                            rows for one payload).
-- PostgreSQL caps a payload below 8000 bytes; past 7000 the flush is cheaper
-- than the list anyway.

CREATE FUNCTION nova_cache_payload(tab text, ids uuid[], emails text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN octet_length(p) > 7000 THEN '*' ELSE p END
    FROM (SELECT json_build_object(
              't', tab,
              'u', coalesce((SELECT json_agg(DISTINCT i) FROM unnest(ids) i WHERE i IS NOT NULL), '[]'),
              'e', coalesce((SELECT json_agg(DISTINCT e) FROM unnest(emails) e WHERE e IS NOT NULL), '[]'))::text AS p) x
$$;

-- One function for both tables: the ids (users.id, user_permissions.user_id)
-- and, for users, the canonical emails a statement touched, before and after
-- (an email changed in SQL evicts the old address and the new one's "not
-- found").
CREATE FUNCTION nova_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cols   text := CASE TG_TABLE_NAME WHEN 'users' THEN 'id, email_canonical' ELSE 'user_id, NULL::text' END;
    rows   text := CASE TG_OP
                       WHEN 'INSERT' THEN 'SELECT ' || cols || ' FROM new_rows'
                       WHEN 'DELETE' THEN 'SELECT ' || cols || ' FROM old_rows'
                       ELSE 'SELECT ' || cols || ' FROM old_rows UNION ALL SELECT ' || cols || ' FROM new_rows' END;
    ids    uuid[];
    emails text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('nova_auth_cache', '*');
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT array_agg(i), array_agg(e) FROM (' || rows || ') r(i, e)' INTO ids, emails;
    IF ids IS NOT NULL THEN
        PERFORM pg_notify('nova_auth_cache', nova_cache_payload(TG_TABLE_NAME, ids, emails));
    END IF;
    RETURN NULL;
END $$;

-- A trigger with transition tables handles one event: three per table, and
-- one for TRUNCATE.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'user_permissions'] LOOP
        EXECUTE format('CREATE TRIGGER nova_cache_insert AFTER INSERT ON %I
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nova_cache_notify()', t);
        EXECUTE format('CREATE TRIGGER nova_cache_update AFTER UPDATE ON %I
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nova_cache_notify()', t);
        EXECUTE format('CREATE TRIGGER nova_cache_delete AFTER DELETE ON %I
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION nova_cache_notify()', t);
        EXECUTE format('CREATE TRIGGER nova_cache_truncate AFTER TRUNCATE ON %I
            FOR EACH STATEMENT EXECUTE FUNCTION nova_cache_notify()', t);
    END LOOP;
END $$;
