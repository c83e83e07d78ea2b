#include "common/auth_token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"

/* Reads at most AUTH_TOKEN_MAX + 1 bytes of `path` into `buf`. */
static int auth_token_read_file(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot read the authentication token file %s: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -EINVAL;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    return 0;
}

static int auth_token_finish(char *raw, char **authorization, const char *where, char *err, size_t errlen)
{
    char *start = raw;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    size_t len = strlen(start);
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' || start[len - 1] == '\n' ||
                       start[len - 1] == '\r'))
        len--;
    if (len == 0) {
        snprintf(err, errlen, "the authentication token in %s is empty", where);
        return -ENOENT;
    }
    if (len > AUTH_TOKEN_MAX) {
        snprintf(err, errlen, "the authentication token in %s is longer than %d bytes", where, AUTH_TOKEN_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        /* It travels as a header value: visible ASCII only. */
        if (start[i] < 0x21 || start[i] > 0x7e) {
            snprintf(err, errlen, "the authentication token in %s has a character a header cannot carry "
                                  "(byte %zu)", where, i);
            return -EINVAL;
        }
    }
    size_t n = sizeof "Bearer " - 1 + len + 1;
    *authorization = xmalloc(n);
    snprintf(*authorization, n, "Bearer %.*s", (int)len, start);
    return 0;
}

int auth_token_load(char **authorization, char *err, size_t errlen)
{
    *authorization = NULL;
    const char *mode = getenv("RAY_AUTH_MODE");
    if (!mode || strcasecmp(mode, "token") != 0)
        return 0;
    char buf[AUTH_TOKEN_MAX + 2];
    const char *env = getenv("RAY_AUTH_TOKEN");
    if (env && env[0]) {
        if (strlen(env) > AUTH_TOKEN_MAX + 1) {
            snprintf(err, errlen, "RAY_AUTH_TOKEN is longer than %d bytes", AUTH_TOKEN_MAX);
            return -EINVAL;
        }
        snprintf(buf, sizeof buf, "%s", env);
        return auth_token_finish(buf, authorization, "RAY_AUTH_TOKEN", err, errlen);
    }
    char path[4096];
    const char *file = getenv("RAY_AUTH_TOKEN_PATH");
    if (file && file[0]) {
        snprintf(path, sizeof path, "%s", file);
    } else {
        const char *home = getenv("HOME");
        if (!home || !home[0]) {
            snprintf(err, errlen, "RAY_AUTH_MODE=token but no RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or HOME");
            return -ENOENT;
        }
        snprintf(path, sizeof path, "%s/.ray/auth_token", home);
    }
    int rc = auth_token_read_file(path, buf, sizeof buf, err, errlen);
    return rc ? rc : auth_token_finish(buf, authorization, path, err, errlen);
}
