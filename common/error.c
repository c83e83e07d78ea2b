#include "common/error.h"

#include <string.h>

const char *cr_strerror(int err)
{
    switch (err) {
    case CR_OK: return "ok";
    case CR_EBADMSG: return "malformed message";
    case CR_ETOOBIG: return "length beyond limit";
    case CR_EBADFLAG: return "bad command-line flag";
    case CR_ERPC: return "gRPC call failed";
    case CR_EGCS: return "GCS returned an error";
    case CR_ECLOSED: return "closed";
    case CR_ETIMEOUT: return "timed out";
    case CR_EAUTH: return "authentication token refused";
    default: break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
