#include "raylet/worker/jobs.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

typedef struct job {
    uint8_t id[ID_JOB_SIZE];
    uint8_t *config; /* serialized rpc::JobConfig, owned */
    size_t config_len;
    bool finished;
} job_t;

struct jobs {
    job_t *items;
    size_t count, cap;
};

jobs_t *jobs_create(void) { return xcalloc(1, sizeof(jobs_t)); }

void jobs_destroy(jobs_t *jobs)
{
    if (!jobs)
        return;
    for (size_t i = 0; i < jobs->count; i++)
        free(jobs->items[i].config);
    free(jobs->items);
    free(jobs);
}

static job_t *jobs_find(const jobs_t *jobs, const uint8_t *id)
{
    for (size_t i = 0; i < jobs->count; i++)
        if (memcmp(jobs->items[i].id, id, ID_JOB_SIZE) == 0)
            return &jobs->items[i];
    return NULL;
}

static job_t *jobs_get(jobs_t *jobs, const uint8_t *id)
{
    job_t *j = jobs_find(jobs, id);
    if (j)
        return j;
    if (jobs->count == jobs->cap) {
        jobs->cap = jobs->cap ? jobs->cap * 2 : 8;
        jobs->items = xrealloc(jobs->items, jobs->cap * sizeof *jobs->items);
    }
    j = &jobs->items[jobs->count++];
    memset(j, 0, sizeof *j);
    memcpy(j->id, id, ID_JOB_SIZE);
    return j;
}

void jobs_add(jobs_t *jobs, const uint8_t id[ID_JOB_SIZE], const uint8_t *config, size_t config_len)
{
    job_t *j = jobs_get(jobs, id);
    if (config && config_len > 0) {
        free(j->config);
        j->config = xmemdup(config, config_len);
        j->config_len = config_len;
    }
}

const uint8_t *jobs_config(const jobs_t *jobs, const uint8_t id[ID_JOB_SIZE], size_t *len)
{
    const job_t *j = jobs_find(jobs, id);
    *len = j ? j->config_len : 0;
    return j && j->config_len ? j->config : NULL;
}

bool jobs_finish(jobs_t *jobs, const uint8_t id[ID_JOB_SIZE])
{
    job_t *j = jobs_get(jobs, id);
    if (j->finished)
        return false;
    j->finished = true;
    return true;
}

size_t jobs_running(const jobs_t *jobs)
{
    size_t n = 0;
    for (size_t i = 0; i < jobs->count; i++)
        n += !jobs->items[i].finished;
    return n;
}
