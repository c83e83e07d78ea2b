#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The sink is process-wide by nature (like stderr itself); it is written
 * once at start-up and only read afterwards. */
static FILE *log_out;
static FILE *log_err;
static log_level_t log_min_level = LOG_LEVEL_INFO;

int log_open(const char *out_path, const char *err_path)
{
    FILE *out = NULL, *err = NULL;
    if (out_path && !(out = fopen(out_path, "ae")))
        return -errno;
    if (err_path && !(err = fopen(err_path, "ae"))) {
        int e = -errno;
        if (out)
            fclose(out);
        return e;
    }
    if (out) {
        setvbuf(out, NULL, _IOLBF, 0);
        log_out = out;
    }
    if (err) {
        setvbuf(err, NULL, _IOLBF, 0);
        log_err = err;
    }
    return 0;
}

void log_set_level(log_level_t level) { log_min_level = level; }

void log_close(void)
{
    if (log_out)
        fclose(log_out);
    if (log_err)
        fclose(log_err);
    log_out = log_err = NULL;
}

void log_write(log_level_t level, const char *file, int line, const char *fmt, ...)
{
    if (level < log_min_level)
        return;
    static const char tags[] = "DIWE";
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;

    FILE *out = log_out ? log_out : stderr;
    fprintf(out, "[%s.%03ld %d %c %s:%d] %s\n", when, (long)(tv.tv_usec / 1000), (int)getpid(),
            tags[level], base, line, msg);
    if (level >= LOG_LEVEL_WARN && log_err)
        fprintf(log_err, "[%s.%03ld %d %c %s:%d] %s\n", when, (long)(tv.tv_usec / 1000),
                (int)getpid(), tags[level], base, line, msg);
}
