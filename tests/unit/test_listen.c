/* The Unix-socket listener: socket mode, peers of another uid refused, and
 * no busy loop when descriptors run out (the loop must sleep through the
 * back-off instead of spinning on the connection left in the backlog). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/listen.h"

typedef struct accepted {
    int count;
    int last_fd;
    pid_t last_pid;
} accepted_t;

static void on_accept(void *ctx, int fd, uid_t uid, pid_t pid)
{
    accepted_t *a = ctx;
    a->count++;
    a->last_pid = pid;
    if (a->last_fd >= 0)
        close(a->last_fd);
    a->last_fd = fd;
}

/* Under a per-test directory (made here, 0755). */
static void temp_path(char *out, size_t cap, const char *name)
{
    char top[64];
    snprintf(top, sizeof top, "/tmp/craylet-listen-%d", (int)getpid());
    mkdir(top, 0755);
    snprintf(out, cap, "%s/%s", top, name);
}

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct ticks {
    uint64_t iterations;
} ticks_t;

static void count_iteration(loop_t *loop, void *data) { ((ticks_t *)data)->iterations++; }
static void stop_loop(loop_t *loop, uint64_t id, void *data) { loop_stop(loop); }

static void run_loop_ms(loop_t *loop, uint64_t ms)
{
    loop_add_timer(loop, ms, stop_loop, NULL);
    cr_assert_eq(loop_run(loop), 0);
}

Test(listen, socket_is_private_and_directory_made)
{
    char path[108];
    temp_path(path, sizeof path, "sub/raylet.sock");
    loop_t *loop = loop_create();
    accepted_t a = {.last_fd = -1};
    listen_options_t o = {.path = path, .what = "test socket"};
    int err = 1;
    listener_t *l = listener_create(loop, &o, on_accept, &a, &err);
    cr_assert_not_null(l);
    cr_assert_eq(err, 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600, "socket mode is %o", st.st_mode & 0777);
    char dir[108];
    temp_path(dir, sizeof dir, "sub");
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "directory mode is %o", st.st_mode & 0777);

    int c = connect_to(path);
    cr_assert_geq(c, 0);
    run_loop_ms(loop, 50);
    cr_assert_eq(a.count, 1);
    cr_assert_eq(a.last_pid, getpid(), "the peer's pid comes from SO_PEERCRED");
    int flags = fcntl(a.last_fd, F_GETFD);
    cr_assert(flags & FD_CLOEXEC, "accepted descriptors are close-on-exec");
    close(c);

    listener_destroy(l);
    cr_assert_neq(stat(path, &st), 0, "stopping removes the socket file");
    close(a.last_fd);
    loop_destroy(loop);
    rmdir(dir);
    temp_path(dir, sizeof dir, "");
    rmdir(dir);
}

Test(listen, too_long_path_is_refused)
{
    char path[200];
    memset(path, 'x', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    loop_t *loop = loop_create();
    listen_options_t o = {.path = path};
    int err = 0;
    cr_assert_null(listener_create(loop, &o, on_accept, NULL, &err));
    cr_assert_eq(err, -ENAMETOOLONG);
    loop_destroy(loop);
}

Test(listen, peer_of_another_uid_is_refused)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to connect as another uid");
    char path[108];
    temp_path(path, sizeof path, "uid.sock");
    char dir[108];
    temp_path(dir, sizeof dir, "");
    loop_t *loop = loop_create();
    accepted_t a = {.last_fd = -1};
    listen_options_t o = {.path = path, .what = "test socket"};
    int err;
    listener_t *l = listener_create(loop, &o, on_accept, &a, &err);
    cr_assert_not_null(l);
    chmod(path, 0666); /* let the kernel admit the connection, so our check is what refuses it */
    pid_t child = fork();
    if (child == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        int c = connect_to(path);
        if (c < 0)
            _exit(4);
        char b;
        /* The listener closes us: read sees EOF. */
        _exit(read(c, &b, 1) == 0 ? 0 : 5);
    }
    run_loop_ms(loop, 300);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "child exit %d", WEXITSTATUS(status));
    listen_stats_t st;
    listener_stats(l, &st);
    cr_assert_eq(st.refused_uid, 1);
    cr_assert_eq(a.count, 0, "the owner never sees a refused peer");
    /* Our own uid still gets in. */
    int c = connect_to(path);
    run_loop_ms(loop, 50);
    cr_assert_eq(a.count, 1);
    close(c);
    close(a.last_fd);
    listener_destroy(l);
    loop_destroy(loop);
    rmdir(dir);
}

Test(listen, out_of_descriptors_backs_off_without_spinning)
{
    char path[108];
    temp_path(path, sizeof path, "emfile.sock");
    loop_t *loop = loop_create();
    ticks_t ticks = {0};
    loop_set_before_sleep(loop, count_iteration, &ticks);
    accepted_t a = {.last_fd = -1};
    listen_options_t o = {.path = path, .what = "test socket"};
    int err;
    listener_t *l = listener_create(loop, &o, on_accept, &a, &err);
    cr_assert_not_null(l);
    int client = connect_to(path);
    cr_assert_geq(client, 0);

    /* Use up every descriptor under a lowered limit. */
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int highest = dup(0);
    cr_assert_geq(highest, 0);
    close(highest);
    struct rlimit low = {.rlim_cur = (rlim_t)highest + 8, .rlim_max = old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fillers[64];
    int nfill = 0;
    for (;;) {
        int fd = dup(0);
        if (fd < 0)
            break;
        cr_assert_lt(nfill, 64);
        fillers[nfill++] = fd;
    }
    cr_assert_eq(errno, EMFILE);

    ticks.iterations = 0;
    run_loop_ms(loop, 1000);
    listen_stats_t st;
    listener_stats(l, &st);
    cr_assert_eq(a.count, 0, "no descriptor to accept into");
    cr_assert_geq(st.backoffs, 2, "accept was retried after each back-off");
    /* 1 s / LISTEN_BACKOFF_MS wake-ups plus the stop timer; a spinning
     * level-triggered loop would run hundreds of thousands of times. */
    cr_assert_lt(ticks.iterations, 60, "the loop ran %llu times in one second",
                 (unsigned long long)ticks.iterations);

    /* Descriptors come back: the pending connection is accepted. */
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    run_loop_ms(loop, 3 * LISTEN_BACKOFF_MS);
    cr_assert_eq(a.count, 1, "accepting resumed after the back-off");
    close(client);
    close(a.last_fd);
    listener_destroy(l);
    loop_destroy(loop);
    char dir[108];
    temp_path(dir, sizeof dir, "");
    rmdir(dir);
}
