#include "raylet/cluster/peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

typedef struct peer {
    uint8_t node_id[ID_UNIQUE_SIZE];
    char address[64];     /* node manager address, "" until known */
    int port;             /* node manager port */
    int object_port;      /* object manager port */
    res_set_t *total;     /* owned */
    res_set_t *available; /* owned */
    bool draining;
} peer_t;

struct peers {
    peer_t *items;
    size_t count, cap;
};

peers_t *peers_create(void) { return xcalloc(1, sizeof(peers_t)); }

void peers_destroy(peers_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        res_set_destroy(p->items[i].total);
        res_set_destroy(p->items[i].available);
    }
    free(p->items);
    free(p);
}

static peer_t *peers_find(const peers_t *p, const uint8_t *node_id)
{
    for (size_t i = 0; i < p->count; i++)
        if (memcmp(p->items[i].node_id, node_id, ID_UNIQUE_SIZE) == 0)
            return &p->items[i];
    return NULL;
}

static peer_t *peers_get(peers_t *p, const uint8_t *node_id)
{
    peer_t *e = peers_find(p, node_id);
    if (e)
        return e;
    if (p->count == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 8;
        p->items = xrealloc(p->items, p->cap * sizeof *p->items);
    }
    e = &p->items[p->count++];
    memset(e, 0, sizeof *e);
    memcpy(e->node_id, node_id, ID_UNIQUE_SIZE);
    e->total = res_set_create();
    e->available = res_set_create();
    return e;
}

bool peers_seen(peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE], const char *address, int port, int object_port)
{
    peer_t *e = peers_get(p, node_id);
    bool known = e->address[0] != '\0';
    snprintf(e->address, sizeof e->address, "%s", address ? address : "");
    e->port = port;
    e->object_port = object_port;
    return !known;
}

bool peers_lookup(const peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE], peer_info_t *out)
{
    const peer_t *e = peers_find(p, node_id);
    if (!e || !e->address[0])
        return false;
    *out = (peer_info_t){.node_id = e->node_id,
                         .address = e->address,
                         .port = e->port,
                         .object_port = e->object_port,
                         .draining = e->draining};
    return true;
}

bool peers_remove(peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE])
{
    peer_t *e = peers_find(p, node_id);
    if (!e)
        return false;
    res_set_destroy(e->total);
    res_set_destroy(e->available);
    *e = p->items[--p->count];
    return true;
}

static void peers_copy_set(res_set_t **dst, const res_set_t *src)
{
    res_set_destroy(*dst);
    *dst = res_set_create();
    for (size_t i = 0; src && i < res_set_count(src); i++)
        res_set_put(*dst, res_set_name_at(src, i), res_set_amount_at(src, i));
}

void peers_update_view(peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE], const res_set_t *total,
                       const res_set_t *available, bool draining)
{
    peer_t *e = peers_get(p, node_id);
    peers_copy_set(&e->total, total);
    peers_copy_set(&e->available, available);
    e->draining = draining;
}

size_t peers_count(const peers_t *p) { return p->count; }

void peers_at(const peers_t *p, size_t i, peer_info_t *out)
{
    const peer_t *e = &p->items[i];
    *out = (peer_info_t){.node_id = e->node_id,
                         .address = e->address,
                         .port = e->port,
                         .object_port = e->object_port,
                         .draining = e->draining};
}

static bool peers_fits(const peer_t *e, const res_set_t *have, const res_set_t *request)
{
    if (!e->address[0] || e->port <= 0 || e->draining)
        return false;
    for (size_t k = 0; k < res_set_count(request); k++)
        if (res_set_get(have, res_set_name_at(request, k)) < res_set_amount_at(request, k))
            return false;
    return true;
}

/* Hands `pick` out: fills *out and counts the request against its view
 * until its next report, as the stock raylet does, so a burst of spills
 * spreads over the nodes instead of piling onto the first that looked free. */
static void peers_take(peer_t *pick, const res_set_t *request, lease_remote_t *out)
{
    for (size_t k = 0; k < res_set_count(request); k++) {
        const char *name = res_set_name_at(request, k);
        res_amount_t left = res_set_get(pick->available, name) - res_set_amount_at(request, k);
        res_set_put(pick->available, name, left > 0 ? left : 0);
    }
    snprintf(out->address, sizeof out->address, "%s", pick->address);
    out->port = pick->port;
    memcpy(out->node_id, pick->node_id, ID_UNIQUE_SIZE);
}

bool peers_pick(peers_t *p, const res_set_t *request, bool need_available, lease_remote_t *out)
{
    peer_t *pick = NULL;
    for (size_t i = 0; i < p->count && !pick; i++)
        if (peers_fits(&p->items[i], p->items[i].available, request))
            pick = &p->items[i];
    for (size_t i = 0; i < p->count && !pick && !need_available; i++)
        if (peers_fits(&p->items[i], p->items[i].total, request))
            pick = &p->items[i];
    if (!pick)
        return false;
    peers_take(pick, request, out);
    return true;
}

bool peers_pick_node(peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE], const res_set_t *request,
                     bool need_available, lease_remote_t *out)
{
    for (size_t i = 0; i < p->count; i++) {
        peer_t *e = &p->items[i];
        if (memcmp(e->node_id, node_id, ID_UNIQUE_SIZE) != 0)
            continue;
        if (!e->address[0] || e->port <= 0 || (need_available && !peers_fits(e, e->available, request)))
            return false;
        peers_take(e, request, out);
        return true;
    }
    return false;
}
