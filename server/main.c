/* main.c -- attnd's command line: flags, environment, defaults. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../api/api.h"
#include "server.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: attnd [options]\n"
"\n"
"Attention as an HTTP service: POST /bow, POST /attention, GET /healthz,\n"
"GET /openapi.yaml.  Every option can also be set from the environment;\n"
"a flag wins over its variable.\n"
"\n"
"  --port N           port to listen on (0 = any free port)   ATTND_PORT\n"
"                     default 8080\n"
"  --host ADDR        address to bind (IPv4 or IPv6 literal   ATTND_HOST\n"
"                     or name); default all IPv4 interfaces\n"
"  --threads N        HTTP worker threads                     ATTND_THREADS\n"
"                     default the number of cores\n"
"  --max-body BYTES   largest request body; larger gets 413   ATTND_MAX_BODY\n"
"                     (suffixes K, M, G = KiB, MiB, GiB); default 64M\n"
"  --max-elements N   largest tensor, in elements, that a     ATTND_MAX_ELEMENTS\n"
"                     request may send or make the server\n"
"                     compute; larger gets 413; default 33554432\n"
"  --timeout SECONDS  close connections idle this long        ATTND_TIMEOUT\n"
"                     default 30\n"
"  --grace SECONDS    on SIGINT/SIGTERM, how long in-flight   ATTND_GRACE\n"
"                     requests may take to finish; default 5\n"
"  -h, --help         this text\n"
"\n"
"SIGINT/SIGTERM stop accepting connections, let in-flight requests finish\n"
"(up to --grace seconds) and exit 0.  One access-log line per request goes to stderr:\n"
"METHOD PATH STATUS BYTES MICROSECONDSus.\n");
}

/* A non-negative integer with an optional K/M/G (binary) suffix, or -1. */
static long long parse_size(const char *s, int suffixes)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    if (suffixes && *end) {
        int shift = *end == 'K' || *end == 'k' ? 10
                  : *end == 'M' || *end == 'm' ? 20
                  : *end == 'G' || *end == 'g' ? 30 : -1;
        if (shift < 0 || end[1] || v > (1LL << (62 - shift)))
            return -1;
        v <<= shift;
        end++;
    }
    return *end ? -1 : v;
}

/* Sets *out from the flag if given, else the variable, else leaves the
 * default.  Returns 0 (and says why) on an invalid value. */
static int setting(const char *flag_value, const char *env, const char *flag,
                   int suffixes, long long lo, long long hi, long long *out)
{
    const char *s = flag_value ? flag_value : getenv(env);
    if (!s)
        return 1;
    long long v = parse_size(s, suffixes);
    if (v < lo || v > hi) {
        fprintf(stderr, "attnd: invalid %s%s \"%s\" (expected an integer "
                "from %lld to %lld)\n", flag_value ? "--" : "",
                flag_value ? flag : env, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"host", required_argument, NULL, 'H'},
        {"threads", required_argument, NULL, 't'},
        {"max-body", required_argument, NULL, 'b'},
        {"max-elements", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 'o'},
        {"grace", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *port = NULL, *host = NULL, *threads = NULL, *body = NULL,
               *elements = NULL, *timeout = NULL, *grace = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': port = optarg; break;
        case 'H': host = optarg; break;
        case 't': threads = optarg; break;
        case 'b': body = optarg; break;
        case 'e': elements = optarg; break;
        case 'o': timeout = optarg; break;
        case 'g': grace = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "attnd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long long v_port = 8080, v_threads = cores > 0 ? cores : 1,
              v_body = 64LL << 20, v_elements = API_DEFAULT_MAX_ELEMENTS,
              v_timeout = 30, v_grace = 5;
    if (!setting(port, "ATTND_PORT", "port", 0, 0, 65535, &v_port) ||
        !setting(threads, "ATTND_THREADS", "threads", 0, 1, 1024,
                 &v_threads) ||
        !setting(body, "ATTND_MAX_BODY", "max-body", 1, 1, 1LL << 40,
                 &v_body) ||
        !setting(elements, "ATTND_MAX_ELEMENTS", "max-elements", 0, 1,
                 1LL << 40, &v_elements) ||
        !setting(timeout, "ATTND_TIMEOUT", "timeout", 0, 1, 86400,
                 &v_timeout) ||
        !setting(grace, "ATTND_GRACE", "grace", 0, 0, 3600, &v_grace))
        return 2;
    if (!host)
        host = getenv("ATTND_HOST");
    if (host && !*host)
        host = NULL;

    server_config cfg = {
        .host = host,
        .port = (int)v_port,
        .threads = (int)v_threads,
        .max_body = (uint64_t)v_body,
        .max_elements = v_elements,
        .conn_timeout = (int)v_timeout,
        .conn_limit = 1000,
        .shutdown_grace = (int)v_grace,
    };
    return server_run(&cfg);
}
