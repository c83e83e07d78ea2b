#include "raylet/worker/child_output.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

/* A chatty child cannot hold the loop for longer than this per wake-up. */
#define CHILD_OUTPUT_READS_PER_WAKE 16

typedef struct child_pipe {
    int read_fd;
    int write_fd;
    int dest_fd; /* borrowed */
} child_pipe_t;

struct child_output {
    loop_t *loop;
    child_pipe_t pipes[2]; /* stdout, stderr */
};

static void child_pipe_copy(child_pipe_t *p, int max_reads)
{
    char buf[65536];
    for (int i = 0; i < max_reads; i++) {
        ssize_t n = read(p->read_fd, buf, sizeof buf);
        if (n <= 0)
            return; /* EAGAIN, or the last writer went (we hold one, so not) */
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(p->dest_fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break; /* the log is gone: drop, never block the loop on it */
            off += w;
        }
    }
}

static void child_output_on_readable(loop_t *loop, int fd, unsigned events, void *data)
{
    child_output_t *co = data;
    for (int i = 0; i < 2; i++)
        if (co->pipes[i].read_fd == fd)
            child_pipe_copy(&co->pipes[i], CHILD_OUTPUT_READS_PER_WAKE);
}

static void child_pipe_close(loop_t *loop, child_pipe_t *p, bool watched)
{
    if (p->read_fd >= 0) {
        if (watched)
            loop_del_fd(loop, p->read_fd);
        close(p->read_fd);
    }
    if (p->write_fd >= 0)
        close(p->write_fd);
    p->read_fd = p->write_fd = -1;
}

child_output_t *child_output_create(loop_t *loop, int out_fd, int err_fd, int *err)
{
    child_output_t *co = xcalloc(1, sizeof *co);
    co->loop = loop;
    int dest[2] = {out_fd, err_fd};
    for (int i = 0; i < 2; i++)
        co->pipes[i] = (child_pipe_t){.read_fd = -1, .write_fd = -1, .dest_fd = dest[i]};
    for (int i = 0; i < 2; i++) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
            *err = -errno;
            log_error("cannot create the pipe for children's output: %s", strerror(errno));
            for (int j = 0; j < i; j++)
                child_pipe_close(loop, &co->pipes[j], true);
            free(co);
            return NULL;
        }
        co->pipes[i].read_fd = fds[0];
        co->pipes[i].write_fd = fds[1];
        int rc = loop_add_fd(loop, fds[0], LOOP_READABLE, child_output_on_readable, co);
        if (rc != 0) {
            *err = rc;
            child_pipe_close(loop, &co->pipes[i], false);
            for (int j = 0; j < i; j++)
                child_pipe_close(loop, &co->pipes[j], true);
            free(co);
            return NULL;
        }
    }
    *err = 0;
    return co;
}

int child_output_stdout(const child_output_t *co) { return co ? co->pipes[0].write_fd : -1; }
int child_output_stderr(const child_output_t *co) { return co ? co->pipes[1].write_fd : -1; }

void child_output_stop(child_output_t *co)
{
    if (!co)
        return;
    for (int i = 0; i < 2; i++) {
        if (co->pipes[i].read_fd >= 0)
            child_pipe_copy(&co->pipes[i], CHILD_OUTPUT_READS_PER_WAKE);
        child_pipe_close(co->loop, &co->pipes[i], true);
    }
}

void child_output_destroy(child_output_t *co)
{
    child_output_stop(co);
    free(co);
}
