/*
 * webhooks.c: the wrappers of store/webhook.h, which reach the backend's
 * table of webhook functions (store_ops_t.webhook).
 */
#include "store/webhook.h"

static const store_webhook_ops_t *ops(const store_t *s)
{
    return s->ops->webhook;
}

store_rc_t store_webhook_create(store_t *s, int64_t app, const webhook_t *wh, int max)
{
    return ops(s)->create(s, app, wh, max);
}

store_rc_t store_webhook_get(store_t *s, int64_t app, const char *id, store_webhook_cb cb, void *ctx,
                             const store_async_t *async)
{
    return ops(s)->get(s, app, id, cb, ctx, async);
}

store_rc_t store_webhook_list(store_t *s, int64_t app, const store_newest_page_t *pg, int64_t *total,
                              store_webhook_cb cb, void *ctx, const store_async_t *async)
{
    return ops(s)->list(s, app, pg, total, cb, ctx, async);
}

store_rc_t store_webhook_update(store_t *s, int64_t app, const char *id, const webhook_patch_t *patch,
                                int64_t now, store_webhook_cb cb, void *ctx)
{
    return ops(s)->update(s, app, id, patch, now, cb, ctx);
}

store_rc_t store_webhook_delete(store_t *s, int64_t app, const char *id)
{
    return ops(s)->remove(s, app, id);
}

store_rc_t store_webhook_deliveries(store_t *s, int64_t app, const char *id, const store_newest_page_t *pg,
                                    int64_t *total, store_delivery_cb cb, void *ctx,
                                    const store_async_t *async)
{
    return ops(s)->deliveries(s, app, id, pg, total, cb, ctx, async);
}

store_rc_t store_event_record(store_t *s, int64_t app, const store_event_t *ev, int *recorded)
{
    return ops(s)->event_record(s, app, ev, recorded);
}

store_rc_t store_event_wanted(store_t *s, int64_t app, int type, bool *wanted)
{
    return ops(s)->event_wanted(s, app, type, wanted);
}

store_rc_t store_outbox_claim(store_t *s, const char *owner, int64_t now, int64_t lease_until, int max,
                              store_lane_cb cb, void *ctx)
{
    return ops(s)->claim(s, owner, now, lease_until, max, cb, ctx);
}

store_rc_t store_outbox_queue(store_t *s, const char *webhook_id, int limit, store_queued_cb cb, void *ctx)
{
    return ops(s)->queue(s, webhook_id, limit, cb, ctx);
}

store_rc_t store_outbox_report(store_t *s, const store_report_t *r)
{
    return ops(s)->report(s, r);
}

store_rc_t store_outbox_owners(store_t *s, void (*cb)(void *ctx, const char *owner), void *ctx)
{
    return ops(s)->owners(s, cb, ctx);
}

store_rc_t store_outbox_release_owner(store_t *s, const char *owner)
{
    return ops(s)->release_owner(s, owner);
}

store_rc_t store_outbox_prune(store_t *s, int64_t before, int limit, int *deleted)
{
    return ops(s)->prune(s, before, limit, deleted);
}

store_rc_t store_copy_import_webhook(store_t *s, int64_t app, const webhook_t *wh)
{
    return ops(s)->import_webhook(s, app, wh);
}

store_rc_t store_copy_import_event(store_t *s, const char *webhook_id, const store_queued_t *e)
{
    return ops(s)->import_event(s, webhook_id, e);
}
