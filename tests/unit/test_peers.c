/* The cluster view used for spillback: a burst of spills spreads over the
 * nodes with free resources instead of piling onto the first one. */
#include <criterion/criterion.h>
#include <string.h>

#include "raylet/cluster/peers.h"

static void add_node(peers_t *p, uint8_t id_byte, int port, double cpus)
{
    uint8_t id[ID_UNIQUE_SIZE];
    memset(id, id_byte, sizeof id);
    peers_seen(p, id, "10.0.0.9", port, port + 1);
    res_set_t *s = res_set_create();
    res_set_put(s, "CPU", (res_amount_t)(cpus * RES_UNIT));
    peers_update_view(p, id, s, s, false);
    res_set_destroy(s);
}

Test(peers, spills_spread_and_views_refresh)
{
    peers_t *p = peers_create();
    add_node(p, 1, 1001, 2);
    add_node(p, 2, 1002, 2);
    res_set_t *two = res_set_create();
    res_set_put(two, "CPU", 2 * RES_UNIT);
    lease_remote_t a, b, c;
    cr_assert(peers_pick(p, two, true, &a));
    cr_assert(peers_pick(p, two, true, &b));
    cr_assert_neq(a.port, b.port, "the second spill goes to the other node");
    cr_assert_not(peers_pick(p, two, true, &c), "both views are spent until their next report");
    cr_assert(peers_pick(p, two, false, &c), "by totals a node still fits");
    add_node(p, 1, 1001, 2); /* a fresh report */
    cr_assert(peers_pick(p, two, true, &c));
    cr_assert_eq(c.port, 1001);
    res_set_destroy(two);
    peers_destroy(p);
}
