#include "raylet/version_guard.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cmdline.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/gen/ray_version.h"

#define WORKER_SCRIPT "/_private/workers/default_worker.py"
/* _version.py is a few lines; anything bigger is not Ray's. */
#define VERSION_FILE_MAX 4096

/* `version = "X"` on a line of its own, X made of version characters. */
static int version_guard_parse(const char *text, char *out, size_t outlen)
{
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *p = line;
        if (strncmp(p, "version", 7) != 0)
            continue;
        p += 7;
        while (*p == ' ')
            p++;
        if (*p++ != '=')
            continue;
        while (*p == ' ')
            p++;
        char quote = *p++;
        if (quote != '"' && quote != '\'')
            continue;
        size_t n = strspn(p, "0123456789.abcdefghijklmnopqrstuvwxyz+-");
        if (n == 0 || n >= outlen || p[n] != quote)
            continue;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
    }
    return CR_EBADMSG;
}

int version_guard_launcher(const char *worker_command, char *out, size_t outlen)
{
    if (!worker_command)
        return CR_EBADMSG;
    char **argv;
    size_t argc;
    if (cmdline_split(worker_command, &argv, &argc) != 0)
        return CR_EBADMSG;
    int rc = CR_EBADMSG;
    size_t suffix = strlen(WORKER_SCRIPT);
    for (size_t i = 0; i < argc && rc != 0; i++) {
        size_t len = strlen(argv[i]);
        if (len <= suffix || strcmp(argv[i] + len - suffix, WORKER_SCRIPT) != 0)
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%.*s/_version.py", (int)(len - suffix), argv[i]) >= sizeof path)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char text[VERSION_FILE_MAX + 1];
        ssize_t n = read(fd, text, VERSION_FILE_MAX);
        close(fd);
        if (n <= 0)
            continue;
        text[n] = '\0';
        rc = version_guard_parse(text, out, outlen);
    }
    cmdline_free(argv);
    return rc;
}

int version_guard_check(const char *worker_command, char *why, size_t whylen)
{
    char launcher[64];
    if (version_guard_launcher(worker_command, launcher, sizeof launcher) != 0) {
        log_warn("cannot tell which Ray release started craylet (no readable ray/_version.py beside the "
                 "worker command); assuming Ray %s, the one it was built for",
                 CRAYLET_RAY_VERSION);
        return 0;
    }
    if (strcmp(launcher, CRAYLET_RAY_VERSION) == 0)
        return 0;
    snprintf(why, whylen,
             "craylet was built for Ray %s but Ray %s started it; rebuild it for this Ray: "
             "`make setup RAY_VERSION=%s`, or `pip install .` in this environment",
             CRAYLET_RAY_VERSION, launcher, launcher);
    return 2;
}
