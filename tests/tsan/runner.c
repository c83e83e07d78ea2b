/* Runs the tests registered through tests/tsan/criterion/criterion.h, each
 * in a forked child with a time limit; exits non-zero if any test failed,
 * crashed or drew a ThreadSanitizer report (halt_on_error makes a report
 * fatal to the child). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criterion/criterion.h"

#define TSAN_SHIM_MAX_TESTS 256
#define TSAN_SHIM_TIMEOUT_S 120
#define TSAN_SHIM_SKIP_CODE 77

typedef struct shim_test {
    const char *suite, *name;
    void (*fn)(void);
} shim_test_t;

static shim_test_t shim_tests[TSAN_SHIM_MAX_TESTS];
static size_t shim_count;

typedef struct shim_suite {
    const char *name;
    tsan_shim_suite_t hooks;
} shim_suite_t;

static shim_suite_t shim_suites[16];
static size_t shim_suite_count;

void tsan_shim_register_suite(const char *suite, tsan_shim_suite_t hooks)
{
    if (shim_suite_count < sizeof shim_suites / sizeof shim_suites[0])
        shim_suites[shim_suite_count++] = (shim_suite_t){suite, hooks};
}

static const tsan_shim_suite_t *shim_suite_of(const char *suite)
{
    for (size_t i = 0; i < shim_suite_count; i++)
        if (strcmp(shim_suites[i].name, suite) == 0)
            return &shim_suites[i].hooks;
    return NULL;
}

void tsan_shim_register(const char *suite, const char *name, void (*fn)(void))
{
    if (shim_count < TSAN_SHIM_MAX_TESTS)
        shim_tests[shim_count++] = (shim_test_t){suite, name, fn};
}

void tsan_shim_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    _exit(1);
}

void tsan_shim_skip(void) { _exit(TSAN_SHIM_SKIP_CODE); }

int main(int argc, char **argv)
{
    size_t failed = 0, passed = 0, skipped = 0;
    for (size_t i = 0; i < shim_count; i++) {
        const shim_test_t *t = &shim_tests[i];
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            alarm(TSAN_SHIM_TIMEOUT_S);
            const tsan_shim_suite_t *hooks = shim_suite_of(t->suite);
            if (hooks && hooks->init)
                hooks->init();
            t->fn();
            if (hooks && hooks->fini)
                hooks->fini();
            fflush(NULL);
            _exit(0);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
            ;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == TSAN_SHIM_SKIP_CODE) {
            skipped++;
        } else {
            failed++;
            fprintf(stderr, "[FAIL] %s::%s (%s %d)\n", t->suite, t->name,
                    WIFSIGNALED(status) ? "signal" : "exit code",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
    printf("%s: %zu passed, %zu failed, %zu skipped\n", argc > 0 ? argv[0] : "tsan", passed, failed, skipped);
    return failed ? 1 : 0;
}
