/* Logging.
 *
 * One process-wide sink, set once at start-up before any other thread runs
 * (the gRPC poller thread may log, so writes are a single fprintf each, which
 * stdio keeps atomic per call).  Lines look like
 *   [2026-11-24 08:15:58.123 12345 I gcs_client.c:88] text
 * Everything goes to the info stream; warnings and errors are also copied to
 * the error stream, matching the stock raylet's raylet.out / raylet.err split
 * that Ray's agents tail when the raylet dies. */
#ifndef CRAYLET_COMMON_LOG_H
#define CRAYLET_COMMON_LOG_H

#include <stdio.h>

typedef enum { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR } log_level_t;

/* Redirect output to the given files (NULL keeps stdout/stderr).  Returns 0
 * or -errno; on failure the previous sinks stay in place. */
int log_open(const char *out_path, const char *err_path);
void log_set_level(log_level_t level);
void log_close(void);

void log_write(log_level_t level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __FILE__, __LINE__, __VA_ARGS__)

#endif
