#include "common/ray_event.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/id.h"
#include "common/json.h"
#include "common/log.h"

/* Ray's event ids are 18 random bytes in hex. */
#define EVENT_ID_BYTES 18

struct ray_event_log {
    char *dir;  /* <log_dir>/events */
    char *path; /* <dir>/event_<SOURCE>.log */
    char *source_type;
    char *node_id_hex;
    char host[256];
    int fd; /* -1 until the first event */
    bool logged_failure;
};

ray_event_log_t *ray_event_log_create(const char *log_dir, const char *source_type, const char *node_id_hex)
{
    if (!log_dir || !*log_dir || !source_type || !*source_type)
        return NULL;
    ray_event_log_t *el = xcalloc(1, sizeof *el);
    size_t n = strlen(log_dir) + sizeof "/events";
    el->dir = xmalloc(n);
    snprintf(el->dir, n, "%s/events", log_dir);
    n = strlen(el->dir) + strlen(source_type) + sizeof "/event_.log";
    el->path = xmalloc(n);
    snprintf(el->path, n, "%s/event_%s.log", el->dir, source_type);
    el->source_type = xstrdup(source_type);
    el->node_id_hex = xstrdup(node_id_hex ? node_id_hex : "");
    if (gethostname(el->host, sizeof el->host) != 0)
        el->host[0] = '\0';
    el->host[sizeof el->host - 1] = '\0';
    el->fd = -1;
    return el;
}

static int event_open(ray_event_log_t *el)
{
    /* The dashboard agent makes the directory too; whoever comes first. */
    if (mkdir(el->dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    int fd = open(el->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    el->fd = fd;
    return 0;
}

static const char *severity_name(ray_event_severity_t s)
{
    switch (s) {
    case RAY_EVENT_INFO:
        return "INFO";
    case RAY_EVENT_WARNING:
        return "WARNING";
    case RAY_EVENT_FATAL:
        return "FATAL";
    case RAY_EVENT_ERROR:
    default:
        return "ERROR";
    }
}

int ray_event_log_write(ray_event_log_t *el, ray_event_severity_t severity, const char *label,
                        const char *message)
{
    if (!el)
        return -EINVAL;
    int rc = el->fd >= 0 ? 0 : event_open(el);
    char *line = NULL;
    if (rc == 0) {
        uint8_t raw[EVENT_ID_BYTES];
        char event_id[2 * EVENT_ID_BYTES + 1];
        if (id_random(raw, sizeof raw) != 0)
            memset(raw, 0, sizeof raw);
        id_to_hex(raw, sizeof raw, event_id);
        /* One line per event, as Ray writes it: newlines inside the
         * message are escaped by the quoting. */
        char *q_label = json_quote_dup(label ? label : "", label ? strlen(label) : 0);
        char *q_msg = json_quote_dup(message ? message : "", message ? strlen(message) : 0);
        char *q_host = json_quote_dup(el->host, strlen(el->host));
        char *q_source = json_quote_dup(el->source_type, strlen(el->source_type));
        char *q_node = json_quote_dup(el->node_id_hex, strlen(el->node_id_hex));
        const char *fmt = "{\"timestamp\":%lld,\"severity\":\"%s\",\"label\":%s,\"event_id\":\"%s\","
                          "\"source_type\":%s,\"host_name\":%s,\"pid\":\"%ld\",\"message\":%s,"
                          "\"custom_fields\":{\"node_id\":%s}}\n";
        long long now = (long long)time(NULL);
        int len = snprintf(NULL, 0, fmt, now, severity_name(severity), q_label, event_id, q_source, q_host,
                           (long)getpid(), q_msg, q_node);
        if (len > 0) {
            line = xmalloc((size_t)len + 1);
            snprintf(line, (size_t)len + 1, fmt, now, severity_name(severity), q_label, event_id, q_source,
                     q_host, (long)getpid(), q_msg, q_node);
            ssize_t w = write(el->fd, line, (size_t)len);
            rc = w == len ? 0 : (w < 0 ? -errno : -EIO);
        } else {
            rc = -EINVAL;
        }
        free(q_label);
        free(q_msg);
        free(q_host);
        free(q_source);
        free(q_node);
    }
    free(line);
    if (rc != 0 && !el->logged_failure) {
        log_warn("cannot write event to %s: %s", el->path, strerror(-rc));
        el->logged_failure = true;
    } else if (rc == 0) {
        el->logged_failure = false;
    }
    return rc;
}

void ray_event_log_destroy(ray_event_log_t *el)
{
    if (!el)
        return;
    if (el->fd >= 0)
        close(el->fd);
    free(el->dir);
    free(el->path);
    free(el->source_type);
    free(el->node_id_hex);
    free(el);
}
