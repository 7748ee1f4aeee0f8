-- The fan-out and sender workers keep the endpoints they look up in memory
-- (crates/linkkit-store/src/endpoint_cache.rs). Every change a worker acts on — created,
-- deleted, a new URL, subscription, secret, or enabled state — is announced on the
-- `linkkit_endpoint_changes` channel as "<workspace id> <endpoint id>" when it commits, whoever
-- makes it (the API, a sender disabling an endpoint, an operator's SQL, a cascade). The
-- periodic `last_success_at` bookkeeping and description edits are not: no worker depends on
-- them being fresh.
CREATE FUNCTION linkkit_announce_endpoint_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('linkkit_endpoint_changes', OLD.workspace_id || ' ' || OLD.id);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('linkkit_endpoint_changes', NEW.workspace_id || ' ' || NEW.id);
    IF TG_OP = 'UPDATE' AND (OLD.workspace_id, OLD.id) IS DISTINCT FROM (NEW.workspace_id, NEW.id) THEN
        PERFORM pg_notify('linkkit_endpoint_changes', OLD.workspace_id || ' ' || OLD.id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER endpoints_announce_insert_delete
    AFTER INSERT OR DELETE ON endpoints
    FOR EACH ROW EXECUTE FUNCTION linkkit_announce_endpoint_change();

CREATE TRIGGER endpoints_announce_update
    AFTER UPDATE ON endpoints
    FOR EACH ROW
    WHEN ((OLD.workspace_id, OLD.id, OLD.url, OLD.events, OLD.enabled, OLD.disabled_reason,
           OLD.secret, OLD.previous_secret, OLD.previous_secret_expires_at)
          IS DISTINCT FROM
          (NEW.workspace_id, NEW.id, NEW.url, NEW.events, NEW.enabled, NEW.disabled_reason,
           NEW.secret, NEW.previous_secret, NEW.previous_secret_expires_at))
    EXECUTE FUNCTION linkkit_announce_endpoint_change();
