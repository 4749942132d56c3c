#ifndef ROSTER_CLDAP_SHIM_H
#define ROSTER_CLDAP_SHIM_H

// OpenLDAP's client library as Swift sees it. LDAP_DEPRECATED stays undefined: Roster uses
// the _ext calls only. What Swift cannot import directly (variadic BER calls, pointer-cast
// macros) is wrapped here as small static inline functions.

#include <ldap.h>
#include <lber.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/// LDAP_OPT_ON / LDAP_OPT_OFF are pointer casts of a private symbol.
static inline void *cldap_opt_on(void) { return LDAP_OPT_ON; }
static inline void *cldap_opt_off(void) { return LDAP_OPT_OFF; }

static inline int cldap_set_int_option(LDAP *ld, int option, int value) {
    return ldap_set_option(ld, option, &value);
}

static inline int cldap_get_int_option(LDAP *ld, int option, int *value) {
    return ldap_get_option(ld, option, value);
}

static inline int cldap_set_string_option(LDAP *ld, int option, const char *value) {
    return ldap_set_option(ld, option, value);
}

static inline int cldap_set_timeout_option(LDAP *ld, int option, long milliseconds) {
    struct timeval tv;
    tv.tv_sec = milliseconds / 1000;
    tv.tv_usec = (milliseconds % 1000) * 1000;
    return ldap_set_option(ld, option, &tv);
}

/// The server's diagnostic message kept on the handle after a failed operation (may be NULL;
/// free with ldap_memfree).
static inline char *cldap_diagnostic_message(LDAP *ld) {
    char *message = NULL;
    ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &message);
    return message;
}

/// The file descriptor of the connection, or -1.
static inline int cldap_descriptor(LDAP *ld) {
    int fd = -1;
    if (ldap_get_option(ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS) return -1;
    return fd;
}

/// Puts liblber's read-ahead layer under the connection's other layers (TLS included), once:
/// the socket is then read in blocks instead of two read(2) calls and a poll(2) per message
/// (libldap 2.5 reads each message's header and body separately over TCP; 2.6 adds this layer
/// itself). Call with no operation outstanding. 0 on success (or if present), -1 otherwise.
static inline int cldap_read_ahead(LDAP *ld) {
    Sockbuf *sb = NULL;
    if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || sb == NULL) return -1;
    if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_HAS_IO, &ber_sockbuf_io_readahead) == 1) return 0;
    return ber_sockbuf_add_io(sb, &ber_sockbuf_io_readahead, LBER_SBIOD_LEVEL_PROVIDER, NULL) == 0 ? 0 : -1;
}

/// Whether the connection's socket is read through the read-ahead layer.
static inline int cldap_reads_ahead(LDAP *ld) {
    Sockbuf *sb = NULL;
    return ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) == LDAP_OPT_SUCCESS && sb != NULL
        && ber_sockbuf_ctrl(sb, LBER_SB_OPT_HAS_IO, &ber_sockbuf_io_readahead) == 1;
}

/// A struct berval pointing at bytes owned by the caller.
static inline struct berval cldap_berval(const void *bytes, ber_len_t length) {
    struct berval value;
    value.bv_len = length;
    value.bv_val = (char *)bytes;
    return value;
}

// --- BER wrappers for controls libldap has no helper for (variadic in C) ---------------------

/// Encodes the value of Active Directory's DirSync request control
/// (1.2.840.113556.1.4.841): SEQUENCE { flags INTEGER, maxBytes INTEGER, cookie OCTET STRING }.
/// On success *out holds a malloc'd berval to release with ber_bvfree.
static inline int cldap_encode_dirsync_request(int flags, int max_bytes,
                                               const void *cookie, ber_len_t cookie_length,
                                               struct berval **out) {
    BerElement *ber = ber_alloc_t(LBER_USE_DER);
    if (ber == NULL) return LDAP_NO_MEMORY;
    struct berval c = cldap_berval(cookie, cookie_length);
    int rc = ber_printf(ber, "{iiO}", (ber_int_t)flags, (ber_int_t)max_bytes, &c);
    if (rc == -1) { ber_free(ber, 1); return LDAP_ENCODING_ERROR; }
    rc = ber_flatten(ber, out);
    ber_free(ber, 1);
    return rc == 0 ? LDAP_SUCCESS : LDAP_ENCODING_ERROR;
}

/// Decodes the value of Active Directory's DirSync response control:
/// SEQUENCE { moreResults INTEGER, unused INTEGER, cookie OCTET STRING }.
/// On success *cookie is a malloc'd berval to release with ber_bvfree.
static inline int cldap_decode_dirsync_response(const struct berval *value, int *more_results,
                                                struct berval **cookie) {
    BerElement *ber = ber_init((struct berval *)value);
    if (ber == NULL) return LDAP_NO_MEMORY;
    ber_int_t more = 0, unused = 0;
    ber_tag_t tag = ber_scanf(ber, "{iiO}", &more, &unused, cookie);
    ber_free(ber, 1);
    if (tag == LBER_ERROR) return LDAP_DECODING_ERROR;
    *more_results = (int)more;
    return LDAP_SUCCESS;
}

#endif
