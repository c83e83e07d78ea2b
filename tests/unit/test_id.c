/* Ray IDs: sizes, hex, nil, random, and the layouts of derived IDs.  The
 * expected hex strings were produced by the installed Ray wheel's own ID
 * classes (ray._raylet), so they pin our layouts to Ray's. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/id.h"

Test(id, sizes_match_ray)
{
    cr_assert_eq(sizeof(id_unique_t), 28);
    cr_assert_eq(sizeof(id_node_t), 28);
    cr_assert_eq(sizeof(id_worker_t), 28);
    cr_assert_eq(sizeof(id_cluster_t), 28);
    cr_assert_eq(sizeof(id_job_t), 4);
    cr_assert_eq(sizeof(id_actor_t), 16);
    cr_assert_eq(sizeof(id_task_t), 24);
    cr_assert_eq(sizeof(id_object_t), 28);
    cr_assert_eq(sizeof(id_pg_t), 18);
    cr_assert_eq(sizeof(id_lease_t), 32);
}

Test(id, hex_round_trip_emits_lowercase)
{
    static const char hex[] = "349c5e07b25238d41307915492f30f5695772a2604cf14e75042b0a7";
    id_node_t n;
    char out[ID_HEX_BUF];
    cr_assert_eq(ID_FROM_HEX(&n, hex, strlen(hex)), 0);
    cr_assert_eq(n.b[0], 0x34);
    cr_assert_eq(n.b[27], 0xa7);
    cr_assert_str_eq(ID_TO_HEX(&n, out), hex);

    static const char upper[] = "349C5E07B25238D41307915492F30F5695772A2604CF14E75042B0A7";
    id_node_t u;
    cr_assert_eq(ID_FROM_HEX(&u, upper, strlen(upper)), 0);
    cr_assert(ID_EQUAL(&n, &u));
    cr_assert_str_eq(ID_TO_HEX(&u, out), hex);
}

Test(id, hex_is_strict)
{
    static const char good[] = "04030201";
    id_job_t j;
    cr_assert_eq(ID_FROM_HEX(&j, good, 8), 0);
    /* Wrong lengths, including odd ones and a NUL-terminated read that
     * stops short. */
    cr_assert_eq(ID_FROM_HEX(&j, good, 7), CR_EBADMSG);
    cr_assert(ID_IS_NIL(&j), "a failed parse leaves nil, not half an ID");
    cr_assert_eq(ID_FROM_HEX(&j, "0403020100", 10), CR_EBADMSG);
    cr_assert_eq(ID_FROM_HEX(&j, "", 0), CR_EBADMSG);
    cr_assert_eq(ID_FROM_HEX(&j, NULL, 8), CR_EBADMSG);
    /* Non-hex characters anywhere. */
    static const char *const bad[] = {"0403020g", "g4030201", "0403 201", "0x030201",
                                      "04030\0" "01", "-4030201", "0403020G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(ID_FROM_HEX(&j, bad[i], 8), CR_EBADMSG, "%zu", i);
    /* A high-bit byte must not index anything. */
    char hi[8] = {'0', '4', '0', '3', '0', '2', '0', (char)0xb1};
    cr_assert_eq(ID_FROM_HEX(&j, hi, 8), CR_EBADMSG);
}

Test(id, binary_must_match_the_size)
{
    uint8_t raw[32];
    memset(raw, 0x11, sizeof raw);
    id_worker_t w;
    cr_assert_eq(ID_FROM_BINARY(&w, raw, 28), 0);
    cr_assert_eq(w.b[27], 0x11);
    cr_assert_eq(ID_FROM_BINARY(&w, raw, 27), CR_EBADMSG);
    cr_assert(ID_IS_NIL(&w));
    cr_assert_eq(ID_FROM_BINARY(&w, raw, 29), CR_EBADMSG);
    cr_assert_eq(ID_FROM_BINARY(&w, raw, 0), CR_EBADMSG);
    cr_assert_eq(ID_FROM_BINARY(&w, NULL, 28), CR_EBADMSG);
    id_lease_t l;
    cr_assert_eq(ID_FROM_BINARY(&l, raw, 32), 0);
}

Test(id, nil_is_all_ff)
{
    id_job_t j;
    id_node_t n;
    char out[ID_HEX_BUF];
    ID_SET_NIL(&j);
    ID_SET_NIL(&n);
    cr_assert_str_eq(ID_TO_HEX(&j, out), "ffffffff");
    cr_assert_str_eq(ID_TO_HEX(&n, out),
                     "ffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
    cr_assert(ID_IS_NIL(&n));
    n.b[13] = 0;
    cr_assert_not(ID_IS_NIL(&n));
    memset(n.b, 0, sizeof n.b);
    cr_assert_not(ID_IS_NIL(&n), "zero is not nil in Ray");
}

Test(id, random_ids_differ)
{
    id_node_t a, b;
    cr_assert_eq(ID_RANDOM(&a), 0);
    cr_assert_eq(ID_RANDOM(&b), 0);
    cr_assert_not(ID_EQUAL(&a, &b));
    cr_assert_not(ID_IS_NIL(&a));
    id_lease_t l;
    cr_assert_eq(ID_RANDOM(&l), 0);
}

Test(id, job_ids_are_little_endian_ints)
{
    /* JobID.from_int(0x01020304).hex() == "04030201" */
    id_job_t j = id_job_from_int(0x01020304);
    char out[ID_HEX_BUF];
    cr_assert_str_eq(ID_TO_HEX(&j, out), "04030201");
    cr_assert_eq(id_job_to_int(&j), 0x01020304);
}

Test(id, derived_ids_embed_their_job)
{
    /* From Ray: ActorID.of(job, driver task, 1), TaskID.for_actor_creation_task,
     * PlacementGroupID.of(job), all for JobID.from_int(0x01020304). */
    static const char actor_hex[] = "2374dd00ed189b025f28608a04030201";
    static const char task_hex[] = "ffffffffffffffff2374dd00ed189b025f28608a04030201";
    static const char pg_hex[] = "cd387f8821bd946f8eed018ed1ea04030201";
    id_job_t want = id_job_from_int(0x01020304), got;
    id_actor_t a;
    id_task_t t;
    id_pg_t pg;
    cr_assert_eq(ID_FROM_HEX(&a, actor_hex, strlen(actor_hex)), 0);
    cr_assert_eq(ID_FROM_HEX(&t, task_hex, strlen(task_hex)), 0);
    cr_assert_eq(ID_FROM_HEX(&pg, pg_hex, strlen(pg_hex)), 0);
    got = id_job_of_actor(&a);
    cr_assert(ID_EQUAL(&got, &want));
    got = id_job_of_task(&t);
    cr_assert(ID_EQUAL(&got, &want));
    got = id_job_of_pg(&pg);
    cr_assert(ID_EQUAL(&got, &want));

    /* An ObjectID is its task's ID followed by a 4-byte index. */
    id_object_t o;
    memcpy(o.b, t.b, ID_TASK_SIZE);
    static const uint8_t idx[4] = {5, 0, 0, 0};
    memcpy(o.b + ID_TASK_SIZE, idx, 4);
    cr_assert_eq(id_object_index(&o), 5);
    id_task_t ot = id_task_of_object(&o);
    cr_assert(ID_EQUAL(&ot, &t));
    got = id_job_of_object(&o);
    cr_assert(ID_EQUAL(&got, &want));
}
