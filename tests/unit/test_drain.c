/* DrainRaylet decided as the stock raylet does (raylet/cluster/drain.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "raylet/cluster/drain.h"

Test(drain, idle_termination_only_while_idle)
{
    drain_t d = {0};
    const char *why;
    cr_assert_eq(drain_request(&d, DRAIN_REASON_IDLE_TERMINATION, "idle", 0, false, &why), DRAIN_REJECTED);
    cr_assert_str_eq(why, "The node to be idle terminated is no longer idle.");
    cr_assert_not(d.active, "a refusal records nothing");
    cr_assert_eq(drain_request(&d, DRAIN_REASON_IDLE_TERMINATION, "idle", 0, true, &why), DRAIN_ACCEPTED);
    cr_assert(d.active);
    cr_assert_eq(drain_death_reason(&d), DRAIN_DEATH_IDLE);
    cr_assert_str_eq(d.message, "idle");
}

Test(drain, preemption_is_accepted_busy_and_the_first_request_stands)
{
    drain_t d = {0};
    const char *why;
    cr_assert_eq(drain_request(&d, DRAIN_REASON_PREEMPTION, "spot", 5000, false, &why), DRAIN_ACCEPTED);
    cr_assert_eq(drain_death_reason(&d), DRAIN_DEATH_PREEMPTED);
    /* Again, with another reason and deadline: accepted, nothing changes. */
    cr_assert_eq(drain_request(&d, DRAIN_REASON_IDLE_TERMINATION, "other", 9000, false, &why), DRAIN_ACCEPTED);
    cr_assert_eq(d.reason, DRAIN_REASON_PREEMPTION);
    cr_assert_eq(d.deadline_ms, 5000);
    cr_assert_str_eq(d.message, "spot");
}

Test(drain, the_deadline_decides_how_a_sigterm_reads)
{
    drain_t d = {0};
    const char *why;
    cr_assert_not(drain_preempted_by(&d, 10000), "not draining");
    cr_assert_eq(drain_request(&d, DRAIN_REASON_PREEMPTION, "spot", 5000, true, &why), DRAIN_ACCEPTED);
    cr_assert_not(drain_preempted_by(&d, 4000), "before the deadline: an ordinary stop");
    cr_assert(drain_preempted_by(&d, 6000), "after it: preempted");
    drain_t none = {0};
    cr_assert_eq(drain_request(&none, DRAIN_REASON_PREEMPTION, "x", 0, true, &why), DRAIN_ACCEPTED);
    cr_assert_not(drain_preempted_by(&none, 6000), "no deadline: never");
    drain_t idle = {0};
    cr_assert_eq(drain_request(&idle, DRAIN_REASON_IDLE_TERMINATION, "x", 1, true, &why), DRAIN_ACCEPTED);
    cr_assert_not(drain_preempted_by(&idle, 6000), "idle termination is never a preemption");
}

Test(drain, bad_requests_are_refused_not_fatal)
{
    drain_t d = {0};
    const char *why;
    cr_assert_eq(drain_request(&d, DRAIN_REASON_UNSPECIFIED, "x", 0, true, &why), DRAIN_INVALID);
    cr_assert_not_null(why);
    cr_assert_eq(drain_request(&d, 77, "x", 0, true, &why), DRAIN_INVALID);
    cr_assert_eq(drain_request(&d, DRAIN_REASON_PREEMPTION, "x", -1, true, &why), DRAIN_INVALID);
    cr_assert_not(d.active);
    char long_msg[DRAIN_MESSAGE_MAX * 2];
    memset(long_msg, 'a', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    cr_assert_eq(drain_request(&d, DRAIN_REASON_PREEMPTION, long_msg, 0, true, &why), DRAIN_ACCEPTED);
    cr_assert_eq(strlen(d.message), DRAIN_MESSAGE_MAX - 1, "a long message is cut, not overflowed");
    drain_t n = {0};
    cr_assert_eq(drain_request(&n, DRAIN_REASON_PREEMPTION, NULL, 0, true, &why), DRAIN_ACCEPTED);
    cr_assert_str_eq(n.message, "");
}
