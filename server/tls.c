/* tls.c -- the certificate and key libmicrohttpd serves over HTTPS.
 *
 * libmicrohttpd does the TLS (GnuTLS underneath); this file only loads and
 * checks the PEM pair and hands it to GnuTLS through a certificate callback
 * (MHD_OPTION_HTTPS_CERT_CALLBACK, GnuTLS's retrieve function), so that a
 * pair re-read on SIGHUP is used by the next handshake while connections
 * already open keep theirs: the daemon is never restarted.  Both the option
 * and GnuTLS's callback exist in libmicrohttpd 0.9.75 and 1.0.
 *
 * A pair is checked before it is used -- files readable, PEM certificate
 * chain, unencrypted key, key belonging to the certificate, certificate
 * within its validity period -- so a bad pair is a clear start-up error,
 * and on SIGHUP a bad pair is refused and the one in use kept. */
#include "server.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <microhttpd.h>

/* TLS 1.2 and 1.3 only, GnuTLS's NORMAL ciphers and groups otherwise (no
 * RC4, 3DES, CBC-SHA1 export suites: NORMAL has none on GnuTLS 3.7). */
#define DEFAULT_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Warn at start and on reload when the certificate ends sooner. */
#define EXPIRY_WARNING_DAYS 14

#define MAX_PEM_BYTES (1 << 20)

/* One loaded pair.  GnuTLS keeps pointers to the chain and key of the
 * pair a handshake picked (it does not copy them), and libmicrohttpd gives
 * no sign of when a connection's handshake is over, so a replaced pair is
 * kept (a few KiB) until the server stops rather than freed under a
 * handshake in progress. */
typedef struct tls_pair {
    gnutls_pcert_st *chain;
    unsigned n;
    gnutls_privkey_t key;
    struct tls_pair *older;
} tls_pair;

static struct {
    const char *cert_path, *key_path;
    char priorities[512];
    _Atomic(tls_pair *) current;
    struct MHD_OptionItem options[3];
} tls;

int server_tls_enabled(void)
{
    return tls.cert_path != NULL;
}

/* Reads a whole file (NUL-terminated, at most MAX_PEM_BYTES); NULL and a
 * message in err when it cannot. */
static char *read_pem(const char *flag, const char *path, size_t *len,
                      char *err, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "cannot read %s %s: %s", flag, path,
                 strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_PEM_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_PEM_BYTES + 1, f) : 0;
    const int failed = !buf || ferror(f);
    const int saved = errno;
    fclose(f);
    if (failed) {
        snprintf(err, errcap, "cannot read %s %s: %s", flag, path,
                 buf ? strerror(saved) : "out of memory");
        free(buf);
        return NULL;
    }
    if (n > MAX_PEM_BYTES) {
        snprintf(err, errcap, "%s %s is over %d bytes: not a PEM file", flag,
                 path, MAX_PEM_BYTES);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void format_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void pair_free(tls_pair *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n; i++)
        gnutls_pcert_deinit(&p->chain[i]);
    free(p->chain);
    if (p->key)
        gnutls_privkey_deinit(p->key);
    free(p);
}

/* Loads and checks the pair at the configured paths; NULL and a message
 * in err on any problem.  info gets a line describing the certificate. */
static tls_pair *pair_load(char *err, size_t errcap, char *info,
                           size_t infocap)
{
    size_t clen = 0, klen = 0;
    gnutls_x509_crt_t *crts = NULL;
    unsigned ncrt = 0;
    gnutls_certificate_credentials_t scratch = NULL;
    tls_pair *p = NULL;
    char *key = NULL;
    char *cert = read_pem("--tls-cert", tls.cert_path, &clen, err, errcap);
    if (!cert)
        goto fail;
    key = read_pem("--tls-key", tls.key_path, &klen, err, errcap);
    if (!key)
        goto fail;
    const gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)clen};
    const gnutls_datum_t kd = {(unsigned char *)key, (unsigned)klen};

    int rc = gnutls_x509_crt_list_import2(&crts, &ncrt, &cd,
                                          GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || ncrt == 0) {
        snprintf(err, errcap, "--tls-cert %s holds no PEM certificate "
                 "(\"-----BEGIN CERTIFICATE-----\"): %s", tls.cert_path,
                 rc < 0 ? gnutls_strerror(rc) : "none found");
        goto fail;
    }

    /* The first certificate is the server's; the rest is its chain. */
    const time_t now = time(NULL);
    const time_t not_after = gnutls_x509_crt_get_expiration_time(crts[0]);
    const time_t not_before = gnutls_x509_crt_get_activation_time(crts[0]);
    char when[32];
    if (not_after != (time_t)-1 && not_after < now) {
        format_time(not_after, when);
        snprintf(err, errcap, "the certificate in --tls-cert %s expired on "
                 "%s; renew it", tls.cert_path, when);
        goto fail;
    }
    if (not_before != (time_t)-1 && not_before > now) {
        format_time(not_before, when);
        snprintf(err, errcap, "the certificate in --tls-cert %s is not valid "
                 "before %s (check the clock)", tls.cert_path, when);
        goto fail;
    }

    p = calloc(1, sizeof *p);
    if (!p || gnutls_privkey_init(&p->key) < 0) {
        snprintf(err, errcap, "out of memory loading the TLS pair");
        goto fail;
    }
    rc = gnutls_privkey_import_x509_raw(p->key, &kd, GNUTLS_X509_FMT_PEM,
                                        NULL, 0);
    if (rc < 0) {
        const int encrypted = strstr(key, "ENCRYPTED") != NULL;
        snprintf(err, errcap, "--tls-key %s holds no usable PEM private key: "
                 "%s", tls.key_path,
                 encrypted ? "it is encrypted, and attnd takes only "
                             "unencrypted keys (protect the file instead)"
                           : gnutls_strerror(rc));
        goto fail;
    }

    /* GnuTLS's own pairing check: the key must sign for the certificate's
     * public key. */
    if (gnutls_certificate_allocate_credentials(&scratch) < 0) {
        snprintf(err, errcap, "out of memory loading the TLS pair");
        goto fail;
    }
    rc = gnutls_certificate_set_x509_key_mem2(scratch, &cd, &kd,
                                              GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
            snprintf(err, errcap, "--tls-key %s is not the key of the "
                     "certificate in --tls-cert %s (mismatched pair)",
                     tls.key_path, tls.cert_path);
        else
            snprintf(err, errcap, "--tls-cert %s and --tls-key %s cannot be "
                     "used together: %s", tls.cert_path, tls.key_path,
                     gnutls_strerror(rc));
        goto fail;
    }

    p->chain = calloc(ncrt, sizeof *p->chain);
    unsigned n = ncrt;
    if (!p->chain ||
        (rc = gnutls_pcert_import_x509_list(p->chain, crts, &n, 0)) < 0) {
        snprintf(err, errcap, "--tls-cert %s: %s", tls.cert_path,
                 p->chain ? gnutls_strerror(rc) : "out of memory");
        goto fail;
    }
    p->n = n;

    gnutls_datum_t dn = {NULL, 0};
    format_time(not_after, when);
    if (gnutls_x509_crt_get_dn3(crts[0], &dn, 0) < 0)
        dn.data = NULL;
    const double days = difftime(not_after, now) / 86400.0;
    snprintf(info, infocap, "%s, %u certificate%s, valid until %s%s",
             dn.data ? (char *)dn.data : "(no subject)", ncrt,
             ncrt == 1 ? "" : "s", when,
             days < EXPIRY_WARNING_DAYS ? " -- WARNING: expires in less "
                                          "than 14 days" : "");
    gnutls_free(dn.data);

    gnutls_certificate_free_credentials(scratch);
    for (unsigned i = 0; i < ncrt; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    free(cert);
    free(key);
    return p;

fail:
    if (scratch)
        gnutls_certificate_free_credentials(scratch);
    for (unsigned i = 0; i < ncrt; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    pair_free(p);
    free(cert);
    if (key) {
        memset(key, 0, klen);   /* the private key: leave no copy behind */
        free(key);
    }
    return NULL;
}

/* GnuTLS asks for the server's chain and key during each handshake. */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
                    int nreqs, const gnutls_pk_algorithm_t *pk_algos,
                    int pk_algos_length, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    (void)session;
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    tls_pair *p = atomic_load(&tls.current);
    if (!p)
        return -1;
    *pcert = p->chain;
    *pcert_length = p->n;
    *privkey = p->key;
    return 0;
}

int server_tls_init(const char *cert_path, const char *key_path,
                    const char *priorities)
{
    if (!cert_path && !key_path)
        return 1;
    if (!cert_path || !key_path) {
        server_log_msg("attnd: %s given without %s: HTTPS needs both the "
                       "certificate and its key", cert_path ? "--tls-cert"
                       : "--tls-key", cert_path ? "--tls-key" : "--tls-cert");
        return 0;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
        MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
        server_log_msg("attnd: this libmicrohttpd (%s) was built without "
                       "HTTPS support (GnuTLS)", MHD_get_version());
        return 0;
    }
    const char *prio = priorities && *priorities ? priorities
                                                 : DEFAULT_PRIORITIES;
    if (strlen(prio) >= sizeof tls.priorities) {
        server_log_msg("attnd: --tls-priorities is too long");
        return 0;
    }
    gnutls_priority_t pc;
    const char *where = NULL;
    int rc = gnutls_priority_init(&pc, prio, &where);
    if (rc < 0) {
        server_log_msg("attnd: invalid --tls-priorities \"%s\": %s at "
                       "\"%.40s\" (GnuTLS priority strings: see "
                       "gnutls-cli --list --priority NORMAL)", prio,
                       gnutls_strerror(rc), where ? where : "");
        return 0;
    }
    gnutls_priority_deinit(pc);
    snprintf(tls.priorities, sizeof tls.priorities, "%s", prio);
    tls.cert_path = cert_path;
    tls.key_path = key_path;

    char err[640], info[512];
    tls_pair *p = pair_load(err, sizeof err, info, sizeof info);
    if (!p) {
        server_log_msg("attnd: %s", err);
        tls.cert_path = tls.key_path = NULL;
        return 0;
    }
    atomic_store(&tls.current, p);
    server_log_msg("attnd: TLS certificate %s; priorities %s", info,
                   tls.priorities);
    return 1;
}

int server_tls_reload(void)
{
    if (!server_tls_enabled())
        return 1;
    char err[640], info[512];
    tls_pair *p = pair_load(err, sizeof err, info, sizeof info);
    if (!p) {
        server_log_msg("attnd: SIGHUP: TLS pair not reloaded, still serving "
                       "the previous one: %s", err);
        return 0;
    }
    p->older = atomic_exchange(&tls.current, p);
    server_log_msg("attnd: SIGHUP: TLS certificate reloaded: %s", info);
    return 1;
}

const struct MHD_OptionItem *server_tls_options(void)
{
    struct MHD_OptionItem *o = tls.options;
    if (server_tls_enabled()) {
        *o++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
                                       (void *)retrieve};
        *o++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                       tls.priorities};
    }
    *o = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return tls.options;
}

void server_tls_free(void)
{
    tls_pair *p = atomic_exchange(&tls.current, NULL);
    while (p) {
        tls_pair *older = p->older;
        pair_free(p);
        p = older;
    }
}
