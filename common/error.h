/* craylet error codes.
 *
 * Every fallible function in craylet returns an int: 0 on success or a
 * negative code.  Codes in (-4096, 0) are negated errno values, so a failed
 * syscall can be passed up as -errno without translation; craylet's own codes
 * sit below that range.  cr_strerror() never returns NULL. */
#ifndef CRAYLET_COMMON_ERROR_H
#define CRAYLET_COMMON_ERROR_H

enum {
    CR_OK = 0,
    CR_EPROTO_BASE = -5000,
    CR_EBADMSG = -5001,  /* malformed bytes from a peer */
    CR_ETOOBIG = -5002,  /* a length field beyond the allowed maximum */
    CR_EBADFLAG = -5003, /* a command-line flag that cannot be parsed */
    CR_ERPC = -5004,     /* a gRPC call finished with a non-OK status */
    CR_EGCS = -5005,     /* GCS replied with a non-OK GcsStatus */
    CR_ECLOSED = -5006,  /* the peer or the component has shut down */
    CR_ETIMEOUT = -5007, /* a deadline passed */
    CR_EAUTH = -5008,    /* the peer refused our authentication token */
};

const char *cr_strerror(int err);

#endif
