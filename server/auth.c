/* auth.c -- API keys (--api-keys FILE) and the Bearer check.
 *
 * The file holds one key per line; blank lines and lines starting with #
 * are skipped, blanks around a key ignored.  Only the SHA-256 of each key
 * is kept; a presented token is hashed and compared with every key's hash
 * in constant time (no early exit, so the time taken says nothing about
 * how much of a key was right).  Keys and tokens are never logged: errors
 * name the file and the line number only.  SIGHUP re-reads the file; a
 * file that cannot be read or holds no key leaves the keys in use. */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#define HASH_BYTES 32           /* SHA-256 */

#define KEY_MIN 16              /* characters: a guessable key is no key */
#define KEY_MAX 512
#define MAX_KEYS 10000

typedef struct keyset {
    size_t n;
    unsigned char (*hash)[HASH_BYTES];
} keyset;

static struct {
    const char *path;
    pthread_rwlock_t lock;      /* readers: requests; writer: SIGHUP */
    keyset keys;
} auth = {.lock = PTHREAD_RWLOCK_INITIALIZER};

int server_auth_enabled(void)
{
    return auth.path != NULL;
}

/* RFC 6750's b64token: the characters a Bearer token may hold. */
static int token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || strchr("-._~+/=", c) != NULL;
}

/* Reads the key file into ks; 0 and a message in err on a problem. */
static int keys_load(keyset *ks, char *err, size_t errcap)
{
    memset(ks, 0, sizeof *ks);
    FILE *f = fopen(auth.path, "r");
    if (!f) {
        snprintf(err, errcap, "cannot read --api-keys %s: %s", auth.path,
                 strerror(errno));
        return 0;
    }
    char line[KEY_MAX + 4];
    size_t cap = 0;
    int lineno = 0, ok = 1;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
            snprintf(err, errcap, "--api-keys %s line %d: longer than %d "
                     "characters", auth.path, lineno, KEY_MAX);
            ok = 0;
            break;
        }
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        n = strlen(s);
        while (n && strchr(" \t\r\n", s[n - 1]))
            n--;
        s[n] = '\0';
        if (n == 0 || s[0] == '#')
            continue;
        for (size_t i = 0; i < n; i++)
            if (!token_char((unsigned char)s[i])) {
                snprintf(err, errcap, "--api-keys %s line %d: a key may hold "
                         "only letters, digits and -._~+/= (character %zu "
                         "is not one)", auth.path, lineno, i + 1);
                ok = 0;
                break;
            }
        if (ok && n < KEY_MIN) {
            snprintf(err, errcap, "--api-keys %s line %d: a key needs at "
                     "least %d characters (this one has %zu); make one with "
                     "openssl rand -hex 32", auth.path, lineno, KEY_MIN, n);
            ok = 0;
        }
        if (ok && ks->n == MAX_KEYS) {
            snprintf(err, errcap, "--api-keys %s: more than %d keys",
                     auth.path, MAX_KEYS);
            ok = 0;
        }
        if (!ok)
            break;
        if (ks->n == cap) {
            cap = cap ? cap * 2 : 8;
            void *h = realloc(ks->hash, cap * sizeof *ks->hash);
            if (!h) {
                snprintf(err, errcap, "out of memory reading --api-keys");
                ok = 0;
                break;
            }
            ks->hash = h;
        }
        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, s, n, ks->hash[ks->n++]) < 0) {
            snprintf(err, errcap, "GnuTLS cannot hash --api-keys (SHA-256)");
            ok = 0;
            break;
        }
    }
    explicit_bzero(line, sizeof line);  /* not optimised away */
    if (ok && ferror(f)) {
        snprintf(err, errcap, "cannot read --api-keys %s: %s", auth.path,
                 strerror(errno));
        ok = 0;
    }
    fclose(f);
    if (ok && ks->n == 0) {
        snprintf(err, errcap, "--api-keys %s holds no key (one a line; # "
                 "starts a comment)", auth.path);
        ok = 0;
    }
    if (!ok) {
        free(ks->hash);
        memset(ks, 0, sizeof *ks);
    }
    return ok;
}

int server_auth_init(const char *path)
{
    if (!path)
        return 1;
    auth.path = path;
    char err[512];
    if (!keys_load(&auth.keys, err, sizeof err)) {
        server_log_msg("attnd: %s", err);
        auth.path = NULL;
        return 0;
    }
    server_log_msg("attnd: API keys: %zu from %s; every route but /healthz, "
                   "/readyz, GET / and OPTIONS needs Authorization: Bearer",
                   auth.keys.n, path);
    return 1;
}

int server_auth_reload(void)
{
    if (!server_auth_enabled())
        return 1;
    keyset ks;
    char err[512];
    if (!keys_load(&ks, err, sizeof err)) {
        server_log_msg("attnd: SIGHUP: API keys not reloaded, the %zu in "
                       "use stay: %s", auth.keys.n, err);
        return 0;
    }
    pthread_rwlock_wrlock(&auth.lock);
    keyset old = auth.keys;
    auth.keys = ks;
    pthread_rwlock_unlock(&auth.lock);
    free(old.hash);
    server_log_msg("attnd: SIGHUP: API keys reloaded: %zu from %s", ks.n,
                   auth.path);
    return 1;
}

server_auth_result server_auth_check(const char *authorization)
{
    if (!authorization)
        return SERVER_AUTH_MISSING;
    const char *s = authorization;
    while (*s == ' ' || *s == '\t')
        s++;
    if (strncasecmp(s, "Bearer", 6) != 0 || (s[6] != ' ' && s[6] != '\t'))
        return SERVER_AUTH_MISSING;
    s += 6;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0)
        return SERVER_AUTH_MISSING;
    unsigned char h[HASH_BYTES];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, s, n, h) < 0)
        return SERVER_AUTH_WRONG;
    /* Every key, every byte: the time does not tell how much matched. */
    unsigned diff_all = 1;
    pthread_rwlock_rdlock(&auth.lock);
    for (size_t i = 0; i < auth.keys.n; i++) {
        unsigned d = 0;
        for (int j = 0; j < HASH_BYTES; j++)
            d |= (unsigned)(h[j] ^ auth.keys.hash[i][j]);
        /* (d - 1) >> 8 is all ones when d == 0 (d < 256), else 0 */
        diff_all &= ~((d - 1u) >> 8) & 1u;
    }
    pthread_rwlock_unlock(&auth.lock);
    return diff_all ? SERVER_AUTH_WRONG : SERVER_AUTH_OK;
}

void server_auth_free(void)
{
    free(auth.keys.hash);
    memset(&auth.keys, 0, sizeof auth.keys);
}
