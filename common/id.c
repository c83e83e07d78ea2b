#include "common/id.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int id_from_binary(const void *data, size_t len, uint8_t *out, size_t size)
{
    if (len != size || (!data && len)) {
        id_set_nil(out, size);
        return CR_EBADMSG;
    }
    if (size)
        memcpy(out, data, size);
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int id_from_hex(const char *hex, size_t hex_len, uint8_t *out, size_t size)
{
    if (!hex || hex_len != 2 * size)
        goto bad;
    for (size_t i = 0; i < size; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto bad;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
bad:
    id_set_nil(out, size);
    return CR_EBADMSG;
}

char *id_to_hex(const uint8_t *id, size_t size, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 0xf];
    }
    out[2 * size] = '\0';
    return out;
}

int id_random(uint8_t *out, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = getrandom(out + got, size - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return 0;
}

void id_set_nil(uint8_t *id, size_t size) { memset(id, 0xff, size); }

bool id_is_nil(const uint8_t *id, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (id[i] != 0xff)
            return false;
    return true;
}

static id_job_t job_at_end(const uint8_t *id, size_t size)
{
    id_job_t j;
    memcpy(j.b, id + size - ID_JOB_SIZE, ID_JOB_SIZE);
    return j;
}

id_job_t id_job_of_actor(const id_actor_t *a) { return job_at_end(a->b, sizeof a->b); }
id_job_t id_job_of_task(const id_task_t *t) { return job_at_end(t->b, sizeof t->b); }
id_job_t id_job_of_pg(const id_pg_t *pg) { return job_at_end(pg->b, sizeof pg->b); }

id_task_t id_task_of_object(const id_object_t *o)
{
    id_task_t t;
    memcpy(t.b, o->b, ID_TASK_SIZE);
    return t;
}

id_job_t id_job_of_object(const id_object_t *o)
{
    id_task_t t = id_task_of_object(o);
    return id_job_of_task(&t);
}

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t id_object_index(const id_object_t *o) { return load32(o->b + ID_TASK_SIZE); }

id_job_t id_job_from_int(uint32_t v)
{
    id_job_t j;
    for (int i = 0; i < 4; i++)
        j.b[i] = (uint8_t)(v >> (8 * i));
    return j;
}

uint32_t id_job_to_int(const id_job_t *j) { return load32(j->b); }
