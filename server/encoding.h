/* encoding.h -- HTTP content codings with zlib: request bodies sent with
 * Content-Encoding gzip or deflate are decoded (the body limit applies to
 * the decoded size too), responses compressed when Accept-Encoding asks
 * and the body is large enough to gain.  No libmicrohttpd here. */
#ifndef ATTND_SERVER_ENCODING_H
#define ATTND_SERVER_ENCODING_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

enum server_coding { CODING_IDENTITY, CODING_GZIP, CODING_DEFLATE };

/* Responses smaller than this are sent as they are, and compressed ones
 * use this zlib level: chosen from bench/compress.py's figures
 * (bench/README.md, "Compression").  Level 1 compresses attnd's JSON
 * 2.1-2.6x at 30-50 MB/s; levels 6 and 9 gain 10-15% more bytes for 3-15x
 * the time.  Below one TCP segment (a 1460-byte MSS) a body goes in one
 * packet whatever its size, so compressing it saves no packet and costs
 * ~20 us (a small /bow answer, 1115 bytes). */
#define SERVER_COMPRESS_MIN_BYTES 1460
#define SERVER_COMPRESS_LEVEL 1

/* The coding of a request body from its Content-Encoding header (NULL =
 * absent): *coding set and 1; or 0 with early set to the 415 of an
 * unsupported coding, in the path's error form.  Only routes that take a
 * body look at it. */
int server_request_coding(const char *path, const char *content_encoding,
                          int *coding, api_response *early);

/* Decodes a body of n bytes in that coding into *out (malloc'd, *outn
 * bytes), refusing to produce more than max bytes.  0 when done; else
 * res is set to the error: 413 body_too_large (decoded size), 400
 * invalid_encoding (not valid gzip/deflate data), 503 out_of_memory. */
int server_decode_body(const char *path, int coding, const char *in,
                       size_t n, uint64_t max, char **out, size_t *outn,
                       api_response *res);

/* The coding to answer with for an Accept-Encoding header (NULL =
 * absent): gzip, else deflate, when acceptable (q > 0, by name or "*"),
 * else identity. */
int server_accept_coding(const char *accept_encoding);

/* Whether a route's answers may be compressed: those a model computes
 * (native POST /bow ..., v2 infer) and /randn's.  Triton compresses only
 * inference answers, and tritonclient.http.aio depends on it: its aiohttp
 * session sends Accept-Encoding: gzip, deflate with every request but
 * does not decompress, so a compressed model configuration or statistics
 * answer would reach it as gzip bytes (seen with get_model_config). */
int server_may_compress(const server_route *rt);

/* Compresses res's body in that coding when it is at least
 * SERVER_COMPRESS_MIN_BYTES and comes out smaller; returns the
 * Content-Encoding to send ("gzip", "deflate") or NULL if the body was
 * left as it is.  The embedded files (is_static) are sent as they are. */
const char *server_compress_response(api_response *res, int coding);

#endif
