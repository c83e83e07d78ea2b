/* libFuzzer harness for the plasma store's socket: arbitrary bytes become
 * the streams of two clients of a real store (socketpairs into
 * store_accept_fd, the store's own loop turned in between), so every byte
 * goes through the frame decoder, the flatbuffer decoders and the request
 * handlers, including the interactions between clients (a get woken by the
 * other's seal, references on each other's objects).  After each input both
 * clients hang up; the store must have dropped them, must pass its own
 * invariant check (references match holders, allocator consistent, memory
 * accounted back), and must free everything at destroy (LeakSanitizer).
 *
 * Input: byte 0 picks the mode.
 *   even: the rest is client 0's raw stream, fed in uneven pieces.
 *   odd:  the rest is a list of records [head:u8][len:u16 le][len bytes]:
 *         head bit 7 picks the client; bit 6 sends the bytes raw (no frame
 *         header); otherwise they go as one frame with the right cookie and
 *         type (head & 31), 20..31 standing for types no message has.
 * Seeds: tests/fuzz/make_seeds_plasma.py (reference FlatBuffers builder). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/loop.h"
#include "object_store/segment.h"
#include "object_store/store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fallback_dir[] = "/tmp/craylet-fuzz-plasma-XXXXXX";
static double fs_threshold = 0.95;

static void stop_cb(loop_t *loop, uint64_t id, void *data) { loop_stop(loop); }

static void one_turn(loop_t *loop, void *data)
{
    int *turns = data;
    if ((*turns)++ >= 1)
        loop_stop(loop);
}

/* One turn of the store's loop: whatever is ready is handled; if nothing
 * is, at most a millisecond passes (the safety timer). */
static void pump(loop_t *loop)
{
    int turns = 0;
    loop_set_before_sleep(loop, one_turn, &turns);
    uint64_t t = loop_add_timer(loop, 1, stop_cb, NULL);
    loop_run(loop);
    loop_cancel_timer(loop, t);
    loop_set_before_sleep(loop, NULL, NULL);
}

static void remove_dir(void) { rmdir(fallback_dir); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* Every malformed input is logged as a warning; keep the output to
     * what would indicate a bug. */
    log_set_level(LOG_LEVEL_ERROR);
    if (!mkdtemp(fallback_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    /* Fallback files are unlinked as they are made; only the directory stays. */
    atexit(remove_dir);
    /* Inputs may ask for huge objects; let fallback files take at most a
     * few tens of MB of this file system beyond what is used now. */
    uint64_t avail, total;
    if (seg_fs_space(fallback_dir, &avail, &total) == 0 && total > 0)
        fs_threshold = ((double)(total - avail) + 32.0 * 1024 * 1024) / (double)total;
    return 0;
}

/* Writes everything unless the store stops reading (a client blocked in a
 * get does not read): then the rest is dropped.  Returns false if the
 * connection is gone. */
static bool send_all(loop_t *loop, int fd, const uint8_t *p, size_t n)
{
    int stalls = 0;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            stalls = 0;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (++stalls > 20)
                return true;
            pump(loop);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        return false;
    }
    return true;
}

/* Reads and drops whatever the store sent, descriptors included (received
 * and closed, so they do not pile up in the socket). */
static void drain(int fd)
{
    for (;;) {
        uint8_t buf[4096];
        union {
            char c[CMSG_SPACE(sizeof(int) * 8)];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.c,
                             .msg_controllen = sizeof ctl.c};
        ssize_t r = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r <= 0)
            return;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
                size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int f;
                    memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof f);
                    close(f);
                }
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    loop_t *loop = loop_create();
    if (!loop)
        return 0;
    store_options_t o;
    store_options_init(&o);
    o.capacity = 1 << 20;
    o.fallback_directory = fallback_dir;
    o.oom_grace_period_ms = 0;
    o.fs_capacity_threshold = fs_threshold;
    store_t *s = store_create(loop, &o);
    if (!s) {
        loop_destroy(loop);
        return 0;
    }
    int cl[2] = {-1, -1};
    for (int i = 0; i < 2; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            abort();
        if (store_accept_fd(s, sv[0]) != 0)
            abort();
        cl[i] = sv[1];
    }

    const uint8_t *p = data + 1, *end = data + size;
    if (!(data[0] & 1)) {
        /* Raw stream in uneven pieces, the store reading between them. */
        while (p < end) {
            size_t n = 1 + (*p % 97);
            if (n > (size_t)(end - p))
                n = (size_t)(end - p);
            if (!send_all(loop, cl[0], p, n))
                break;
            p += n;
            pump(loop);
            drain(cl[0]);
        }
    } else {
        while (end - p >= 3) {
            uint8_t head = p[0];
            size_t len = (size_t)p[1] | (size_t)p[2] << 8;
            p += 3;
            if (len > (size_t)(end - p))
                len = (size_t)(end - p);
            int fd = cl[head >> 7];
            bool ok;
            if (head & 0x40) {
                ok = send_all(loop, fd, p, len);
            } else {
                int64_t type = head & 31;
                if (type >= 20)
                    type = 100 + type;
                uint8_t h[FRAME_HEADER_SIZE];
                frame_header_write(h, FRAME_RAY_COOKIE, type, len);
                ok = send_all(loop, fd, h, sizeof h) && send_all(loop, fd, p, len);
            }
            p += len;
            if (!ok)
                break;
            pump(loop);
            drain(cl[0]);
            drain(cl[1]);
        }
    }

    close(cl[0]);
    close(cl[1]);
    store_stats_t st;
    for (int i = 0; i < 100; i++) {
        store_get_stats(s, &st);
        if (st.num_clients == 0)
            break;
        pump(loop);
    }
    store_get_stats(s, &st);
    if (st.num_clients != 0) {
        fprintf(stderr, "fuzz_plasma: %llu clients still connected after both hung up\n",
                (unsigned long long)st.num_clients);
        abort();
    }
    if (st.num_unsealed != 0 || st.num_pending_gets != 0 || st.num_pending_creates != 0) {
        fprintf(stderr, "fuzz_plasma: state left behind by departed clients\n");
        abort();
    }
    if (store_check(s) != 0)
        abort();
    store_destroy(s);
    loop_destroy(loop);
    return 0;
}
