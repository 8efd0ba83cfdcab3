/* probe.c -- `attnd --healthcheck`: GET /healthz from the server running
 * beside it, over HTTPS when ATTND_TLS_CERT is set, for a container's
 * HEALTHCHECK (the image has no curl, and bash's /dev/tcp speaks no TLS).
 * Configuration is the environment the server itself reads: ATTND_PORT,
 * ATTND_HOST (a wildcard address means loopback), ATTND_TLS_CERT. */
#include "server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#define PROBE_SECONDS 3

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {PROBE_SECONDS, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

int server_healthcheck(void)
{
    const char *port = getenv("ATTND_PORT");
    const char *host = getenv("ATTND_HOST");
    const char *cert = getenv("ATTND_TLS_CERT");
    if (!port || !*port)
        port = "8080";
    if (!host || !*host || !strcmp(host, "0.0.0.0"))
        host = "127.0.0.1";
    else if (!strcmp(host, "::"))
        host = "::1";
    const int tls = cert && *cert;
    const char req[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    char buf[64] = {0};
    ssize_t got = -1;

    int fd = connect_to(host, port);
    if (fd < 0) {
        fprintf(stderr, "attnd --healthcheck: cannot connect to %s port %s\n",
                host, port);
        return 1;
    }
    if (!tls) {
        if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1))
            got = read(fd, buf, sizeof buf - 1);
    } else {
        /* The server's own process, on loopback: the handshake and the
         * answer are what is checked, not who signed the certificate. */
        gnutls_session_t s = NULL;
        gnutls_certificate_credentials_t cred = NULL;
        int rc;
        if (gnutls_certificate_allocate_credentials(&cred) >= 0 &&
            gnutls_init(&s, GNUTLS_CLIENT) >= 0 &&
            gnutls_set_default_priority(s) >= 0 &&
            gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) >= 0) {
            gnutls_transport_set_int(s, fd);
            gnutls_handshake_set_timeout(s, PROBE_SECONDS * 1000);
            do
                rc = gnutls_handshake(s);
            while (rc < 0 && !gnutls_error_is_fatal(rc));
            if (rc >= 0 &&
                gnutls_record_send(s, req, sizeof req - 1) ==
                    (ssize_t)(sizeof req - 1))
                got = gnutls_record_recv(s, buf, sizeof buf - 1);
            else if (rc < 0)
                fprintf(stderr, "attnd --healthcheck: TLS handshake with %s "
                        "port %s failed: %s\n", host, port,
                        gnutls_strerror(rc));
            gnutls_bye(s, GNUTLS_SHUT_WR);
        }
        if (s)
            gnutls_deinit(s);
        if (cred)
            gnutls_certificate_free_credentials(cred);
    }
    close(fd);
    if (got > 0)
        buf[got] = '\0';
    if (got > 12 && !strncmp(buf, "HTTP/1.", 7) && !strncmp(buf + 8, " 200", 4))
        return 0;
    fprintf(stderr, "attnd --healthcheck: %s%s port %s did not answer 200 "
            "to GET /healthz%s%.*s\n", tls ? "https " : "", host, port,
            got > 0 ? ": " : "", (int)strcspn(buf, "\r\n"), buf);
    return 1;
}
