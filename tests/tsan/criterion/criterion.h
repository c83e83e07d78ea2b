/* A minimal stand-in for Criterion's test API, for the ThreadSanitizer
 * build only.
 *
 * Criterion's runner (BoxFort) maps an "inheritable arena" at addresses
 * ThreadSanitizer's shadow memory owns, and dies before running a test.
 * The unit tests that cross threads are compiled unchanged against this
 * header instead: Test() registers a function (TestSuite() its suite's
 * .init and .fini), cr_assert*() and cr_expect*() abort with the
 * failed expression, and tests/tsan/runner.c runs each test in a forked
 * child, so TSan sees every thread the test starts and a report fails it.
 * Messages passed to the assertions are ignored. */
#ifndef CRAYLET_TESTS_TSAN_CRITERION_H
#define CRAYLET_TESTS_TSAN_CRITERION_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void tsan_shim_register(const char *suite, const char *name, void (*fn)(void));
typedef struct tsan_shim_suite {
    void (*init)(void);
    void (*fini)(void);
} tsan_shim_suite_t;
void tsan_shim_register_suite(const char *suite, tsan_shim_suite_t hooks);
void tsan_shim_fail(const char *file, int line, const char *expr) __attribute__((noreturn));
void tsan_shim_skip(void) __attribute__((noreturn));

#define TSAN_SHIM_CAT2(a, b) a##b
#define TSAN_SHIM_CAT(a, b) TSAN_SHIM_CAT2(a, b)

#define Test(suite, name, ...)                                                             \
    static void suite##_##name(void);                                                      \
    __attribute__((constructor)) static void TSAN_SHIM_CAT(tsan_reg_, suite##_##name)(void) \
    {                                                                                      \
        tsan_shim_register(#suite, #name, suite##_##name);                                 \
    }                                                                                      \
    static void suite##_##name(void)

/* A suite's .init and .fini run in the test's child, around the test. */
#define TestSuite(suite, ...)                                                      \
    __attribute__((constructor)) static void TSAN_SHIM_CAT(tsan_suite_, suite)(void) \
    {                                                                              \
        tsan_shim_register_suite(#suite, (tsan_shim_suite_t){__VA_ARGS__});        \
    }

#define TSAN_SHIM_CHECK(cond, text)                         \
    do {                                                    \
        if (!(cond))                                        \
            tsan_shim_fail(__FILE__, __LINE__, text);       \
    } while (0)

#define cr_assert(cond, ...) TSAN_SHIM_CHECK((cond), #cond)
#define cr_assert_not(cond, ...) TSAN_SHIM_CHECK(!(cond), "!(" #cond ")")
#define cr_assert_eq(a, b, ...) TSAN_SHIM_CHECK((a) == (b), #a " == " #b)
#define cr_assert_neq(a, b, ...) TSAN_SHIM_CHECK((a) != (b), #a " != " #b)
#define cr_assert_lt(a, b, ...) TSAN_SHIM_CHECK((a) < (b), #a " < " #b)
#define cr_assert_leq(a, b, ...) TSAN_SHIM_CHECK((a) <= (b), #a " <= " #b)
#define cr_assert_gt(a, b, ...) TSAN_SHIM_CHECK((a) > (b), #a " > " #b)
#define cr_assert_geq(a, b, ...) TSAN_SHIM_CHECK((a) >= (b), #a " >= " #b)
#define cr_assert_null(p, ...) TSAN_SHIM_CHECK((p) == NULL, #p " == NULL")
#define cr_assert_not_null(p, ...) TSAN_SHIM_CHECK((p) != NULL, #p " != NULL")
#define cr_assert_str_eq(a, b, ...) TSAN_SHIM_CHECK(strcmp((a), (b)) == 0, #a " equals " #b)
#define cr_assert_str_neq(a, b, ...) TSAN_SHIM_CHECK(strcmp((a), (b)) != 0, #a " differs from " #b)
#define cr_expect(cond, ...) cr_assert(cond)
#define cr_expect_eq(a, b, ...) cr_assert_eq(a, b)
#define cr_assert_fail(...) tsan_shim_fail(__FILE__, __LINE__, "cr_assert_fail")
#define cr_skip_test(...) tsan_shim_skip()

#endif
