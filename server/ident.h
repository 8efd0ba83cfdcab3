/* ident.h -- a request's identity: its X-Request-Id (the client's, or one
 * made here) and its W3C traceparent, for the response and the access
 * log.  No libmicrohttpd here: http.c passes the header values. */
#ifndef ATTND_SERVER_IDENT_H
#define ATTND_SERVER_IDENT_H

/* The longest X-Request-Id taken as sent; a longer one, or one with a
 * byte outside visible ASCII (0x21-0x7e), is replaced by a new one. */
#define SERVER_REQUEST_ID_MAX 128

/* The request headers a page on another origin may send (CORS
 * preflight's Access-Control-Allow-Headers), and the response headers it
 * may read beyond the safelisted ones (Access-Control-Expose-Headers). */
#define SERVER_CORS_ALLOW_HEADERS \
    "Content-Type, Inference-Header-Content-Length, X-Request-Id, " \
    "traceparent, Content-Encoding"
#define SERVER_CORS_EXPOSE_HEADERS \
    "X-Request-Id, Inference-Header-Content-Length"

typedef struct server_ident {
    char id[SERVER_REQUEST_ID_MAX + 1];     /* never empty once set */
    char trace[56];         /* a valid traceparent as sent, or "" */
} server_ident;

/* Fills ri from the request's X-Request-Id and traceparent headers (NULL
 * = absent): the id as sent when it is 1 to 128 visible ASCII bytes,
 * else 32 random hex digits; the traceparent when it is a valid W3C
 * version-00 one (00-<32 hex trace-id>-<16 hex parent-id>-<2 hex
 * flags>, ids not all zero) or a later version's first 55 bytes in that
 * form, else "". */
void server_ident_init(server_ident *ri, const char *request_id,
                       const char *traceparent);

#endif
