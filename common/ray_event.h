/* Ray's event files: <log_dir>/events/event_<SOURCE>.log, one JSON object
 * per line, which the dashboard agent's event module tails and reports to
 * the dashboard (`ray list cluster-events`, the Events view).  The line is
 * what Ray's own reporters write:
 *
 *   {"timestamp":<unix s>,"severity":"ERROR","label":"...","event_id":"<36 hex>",
 *    "source_type":"RAYLET","host_name":"...","pid":"<pid>","message":"...",
 *    "custom_fields":{"node_id":"<hex>"}}
 *
 * The file is opened on the first event (O_APPEND, close-on-exec) and each
 * event is one write(), so a reader never sees half a line.  A failed
 * write is logged once and the event dropped: events are advisory. */
#ifndef CRAYLET_COMMON_RAY_EVENT_H
#define CRAYLET_COMMON_RAY_EVENT_H

typedef struct ray_event_log ray_event_log_t;

typedef enum ray_event_severity {
    RAY_EVENT_INFO,
    RAY_EVENT_WARNING,
    RAY_EVENT_ERROR,
    RAY_EVENT_FATAL,
} ray_event_severity_t;

/* A writer for <log_dir>/events/event_<source_type>.log (source_type as in
 * Ray's Event.SourceType, e.g. "RAYLET") whose events carry node_id_hex in
 * their custom fields.  Strings are copied.  Returns NULL (after logging)
 * when log_dir is NULL or empty or memory runs out. */
ray_event_log_t *ray_event_log_create(const char *log_dir, const char *source_type, const char *node_id_hex);
/* Appends one event.  label and message are any text (escaped here).
 * Returns 0 or a negative errno; the caller need not log it. */
int ray_event_log_write(ray_event_log_t *el, ray_event_severity_t severity, const char *label,
                        const char *message);
/* Closes the file and frees the writer (NULL is fine). */
void ray_event_log_destroy(ray_event_log_t *el);

#endif
