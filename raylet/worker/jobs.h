/* The jobs this node has heard of (from its drivers and GCS's job
 * channel), and the serialized JobConfig a job's workers need.  Plain
 * bookkeeping on the loop thread; stopping a finished job's workers is the
 * caller's (the pool's) business. */
#ifndef CRAYLET_RAYLET_WORKER_JOBS_H
#define CRAYLET_RAYLET_WORKER_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"

typedef struct jobs jobs_t;

jobs_t *jobs_create(void);
void jobs_destroy(jobs_t *jobs);

/* Remember a job; a non-empty `config` (copied) replaces the one known. */
void jobs_add(jobs_t *jobs, const uint8_t id[ID_JOB_SIZE], const uint8_t *config, size_t config_len);
/* The job's serialized rpc::JobConfig, NULL if none is known; valid until
 * the next jobs_add for that job. */
const uint8_t *jobs_config(const jobs_t *jobs, const uint8_t id[ID_JOB_SIZE], size_t *len);
/* The job finished.  Returns true the first time only. */
bool jobs_finish(jobs_t *jobs, const uint8_t id[ID_JOB_SIZE]);
/* Jobs known and not finished. */
size_t jobs_running(const jobs_t *jobs);

#endif
