/* The Ray messages craylet speaks, in one include.  Generated at build time
 * (see CMakeLists.txt in this directory); never edited by hand. */
#ifndef CRAYLET_PROTO_RAY_PROTO_H
#define CRAYLET_PROTO_RAY_PROTO_H

#include "proto/gen/ray_version.h"
#include "proto/gen/common.pb-c.h"
#include "proto/gen/gcs.pb-c.h"
#include "proto/gen/gcs_service.pb-c.h"
#include "proto/gen/health.pb-c.h"
#include "proto/gen/node_manager.pb-c.h"
#include "proto/gen/pubsub.pb-c.h"
#include "proto/gen/ray_syncer.pb-c.h"
#include "proto/gen/object_manager.pb-c.h"
#include "proto/gen/core_worker.pb-c.h"

#endif
