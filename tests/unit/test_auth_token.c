/* Token authentication settings: where the token comes from, in Ray's
 * order (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token), what is
 * refused, and that nothing is required when the mode is not "token". */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/auth_token.h"

static char dir[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/craylet-auth-%d", (int)getpid());
    mkdir(dir, 0700);
    unsetenv("RAY_AUTH_MODE");
    unsetenv("RAY_AUTH_TOKEN");
    unsetenv("RAY_AUTH_TOKEN_PATH");
    setenv("HOME", dir, 1);
}

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void teardown(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)system(cmd);
}

TestSuite(auth_token, .init = setup, .fini = teardown);

Test(auth_token, off_unless_the_mode_is_token)
{
    char *a = (char *)1, err[256];
    cr_assert_eq(auth_token_load(&a, err, sizeof err), 0);
    cr_assert_null(a);
    setenv("RAY_AUTH_MODE", "disabled", 1);
    setenv("RAY_AUTH_TOKEN", "abc", 1);
    cr_assert_eq(auth_token_load(&a, err, sizeof err), 0);
    cr_assert_null(a);
}

Test(auth_token, environment_first_then_path_then_home)
{
    char *a, err[256];
    setenv("RAY_AUTH_MODE", "TOKEN", 1); /* case does not matter, as in Ray */
    write_file(".ray/auth_token", "from-home\n");
    cr_assert_eq(auth_token_load(&a, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(a, "Bearer from-home");
    free(a);
    setenv("RAY_AUTH_TOKEN_PATH", write_file("other", "  from-path \r\n"), 1);
    cr_assert_eq(auth_token_load(&a, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(a, "Bearer from-path");
    free(a);
    setenv("RAY_AUTH_TOKEN", "from-env", 1);
    cr_assert_eq(auth_token_load(&a, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(a, "Bearer from-env");
    free(a);
}

Test(auth_token, missing_empty_and_malformed_tokens_are_refused_with_a_reason)
{
    char *a, err[256] = "";
    setenv("RAY_AUTH_MODE", "token", 1);
    cr_assert_eq(auth_token_load(&a, err, sizeof err), -ENOENT);
    cr_assert_null(a);
    cr_assert_not_null(strstr(err, ".ray/auth_token"), "%s", err);

    setenv("RAY_AUTH_TOKEN_PATH", write_file("empty", " \n"), 1);
    cr_assert_eq(auth_token_load(&a, err, sizeof err), -ENOENT);
    setenv("RAY_AUTH_TOKEN_PATH", write_file("crlf", "abc\r\nInjected: header"), 1);
    cr_assert_eq(auth_token_load(&a, err, sizeof err), -EINVAL, "a header injection must not pass");
    cr_assert_null(a);

    char big[AUTH_TOKEN_MAX + 10];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    setenv("RAY_AUTH_TOKEN_PATH", write_file("big", big), 1);
    cr_assert_eq(auth_token_load(&a, err, sizeof err), -EINVAL);
    setenv("RAY_AUTH_TOKEN", big, 1);
    cr_assert_eq(auth_token_load(&a, err, sizeof err), -EINVAL);
}
