/* main.c -- attnd's command line: flags, environment, defaults. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

/* One numeric setting: its flag, its variable, its range, and where it
 * lands.  Defaults are whatever the target holds before parsing. */
typedef struct option_spec {
    const char *flag, *env;
    int suffixes;                   /* K/M/G (binary) accepted */
    long long lo, hi;
    enum { INT, I64, U64 } type;
    void *target;
} option_spec;

static void usage(FILE *f, const server_config *d)
{
    fprintf(f,
"usage: attnd [options]\n"
"\n"
"Attention as an HTTP service.  Every option can also be set from the\n"
"environment; a flag wins over its variable.\n"
"\n"
"Network\n"
"  --host ADDR              address to bind, IPv4/IPv6 literal   ATTND_HOST\n"
"                           or name; default all IPv4 interfaces\n"
"  --port N                 port (0 = any free); default %d     ATTND_PORT\n"
"  --threads N              HTTP worker threads; default the   ATTND_THREADS\n"
"                           number of cores (%d here)\n"
"  --max-connections N      open connections in all; more wait ATTND_MAX_CONNECTIONS\n"
"                           in the listen queue; default %d\n"
"  --max-per-ip N           open connections from one address; ATTND_MAX_PER_IP\n"
"                           default %d\n"
"  --timeout SECONDS        close a connection idle this long; ATTND_TIMEOUT\n"
"                           default %d\n"
"  --request-timeout SECONDS  longest a request body may take   ATTND_REQUEST_TIMEOUT\n"
"                           to arrive; then the connection is\n"
"                           closed (logged as 408); default %d\n"
"  --grace SECONDS          on SIGINT/SIGTERM, how long        ATTND_GRACE\n"
"                           in-flight requests may take to\n"
"                           finish; default %d\n"
"  --drain-delay SECONDS    on SIGINT/SIGTERM, first keep      ATTND_DRAIN_DELAY\n"
"                           serving this long with /readyz\n"
"                           answering 503; default %d\n"
"  --log-format FORMAT      access log: text or json (JSON     ATTND_LOG_FORMAT\n"
"                           lines); default text\n"
"\n"
"Models\n"
"  --models DIR             model repository: DIR/<name>/      ATTND_MODELS\n"
"                           config.json + model.safetensors,\n"
"                           each loaded at start-up (any error\n"
"                           stops attnd) and served as /gpt's\n"
"                           \"model\" and /v2/models/<name>;\n"
"                           default ./models if it exists\n"
"\n"
"Request limits (each refused before any allocation, with its own error)\n"
"  --max-body BYTES         request body; 413 body_too_large;  ATTND_MAX_BODY\n"
"                           K, M, G suffixes; default 64M\n"
"  --max-elements N         any one tensor (input, generated   ATTND_MAX_ELEMENTS\n"
"                           or result); 413 too_large;\n"
"                           default %lld\n"
"  --max-total-elements N   all floats of one request;         ATTND_MAX_TOTAL_ELEMENTS\n"
"                           413 request_too_large; default\n"
"                           %d x --max-elements (%lld)\n"
"  --max-work N             multiply-adds of one request;      ATTND_MAX_WORK\n"
"                           413 work_too_large; default %lld\n"
"  --max-batch N            B; 413 dimension_too_large; %lld    ATTND_MAX_BATCH\n"
"  --max-seq N              T; 413 dimension_too_large; %lld    ATTND_MAX_SEQ\n"
"  --max-head-size N        head_size; 413 dimension_too_large; ATTND_MAX_HEAD_SIZE\n"
"                           default %lld\n"
"  --max-depth N            JSON nesting; 400 too_deep; %d      ATTND_MAX_DEPTH\n"
"\n"
"  -h, --help               this text\n"
"\n"
"SIGINT/SIGTERM stop accepting connections, let in-flight requests finish\n"
"(up to --grace seconds; stalled ones are cut after 1 s without progress)\n"
"and exit 0.  One access-log line per request goes to stderr:\n"
"METHOD PATH STATUS BYTES MICROSECONDSus, or with --log-format json\n"
"{\"ts\",\"method\",\"path\",\"status\",\"bytes\",\"duration_us\",\"remote\"}.\n",
            d->port, d->threads, d->conn_limit, d->per_ip_limit,
            d->conn_timeout, d->request_timeout, d->shutdown_grace,
            d->drain_delay,
            (long long)d->limits.max_elements, API_TOTAL_PER_ELEMENTS,
            (long long)d->limits.max_total_elements,
            (long long)d->limits.max_work,
            (long long)d->limits.max_batch, (long long)d->limits.max_seq,
            (long long)d->limits.max_head_size, d->limits.max_depth);
    fprintf(f, "\nEndpoints\n");
    for (int m = 0; m < api_model_count(); m++)
        fprintf(f, "  POST /%-20s %s\n", api_model_name(m),
                api_model_summary(m));
    fprintf(f,
"  POST /randn                torch.randn / torch.rand under a seed\n"
"  GET /models                the --models models and their config\n"
"  GET /healthz, GET /readyz  liveness; readiness (503 while draining)\n"
"  GET /metrics               Prometheus metrics\n"
"  GET /openapi.yaml          the contract (GET / is the visualizer)\n"
"  GET /v2, GET /v2/health/live, GET /v2/health/ready,\n"
"  GET /v2/models/{model}[/ready], POST /v2/models/{model}/infer\n"
"                             KServe / Triton v2 (the models above and\n"
"                             each --models model)\n");
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

/* Sets o's target from the flag value if given, else from its variable.
 * Returns 0 (and says why) on an invalid value. */
static int apply(const option_spec *o, const char *flag_value)
{
    const char *s = flag_value ? flag_value : getenv(o->env);
    if (!s)
        return 1;
    long long v = parse_size(s, o->suffixes);
    if (v < o->lo || v > o->hi) {
        fprintf(stderr, "attnd: invalid %s%s \"%s\" (expected an integer "
                "from %lld to %lld)\n", flag_value ? "--" : "",
                flag_value ? o->flag : o->env, s, o->lo, o->hi);
        return 0;
    }
    switch (o->type) {
    case INT: *(int *)o->target = (int)v; break;
    case I64: *(int64_t *)o->target = v; break;
    case U64: *(uint64_t *)o->target = (uint64_t)v; break;
    }
    return 1;
}

int main(int argc, char **argv)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    server_config cfg = {
        .port = 8080,
        .threads = cores > 0 ? (int)cores : 1,
        .max_body = 64ULL << 20,
        .conn_timeout = 30,
        .request_timeout = 60,
        .conn_limit = 1000,
        .per_ip_limit = 256,
        .shutdown_grace = 5,
    };
    api_config_defaults(&cfg.limits);
    api_config *l = &cfg.limits;
    const long long big = 1LL << 40;
    const option_spec specs[] = {
        {"port", "ATTND_PORT", 0, 0, 65535, INT, &cfg.port},
        {"threads", "ATTND_THREADS", 0, 1, 1024, INT, &cfg.threads},
        {"max-connections", "ATTND_MAX_CONNECTIONS", 0, 1, 100000, INT,
         &cfg.conn_limit},
        {"max-per-ip", "ATTND_MAX_PER_IP", 0, 1, 100000, INT,
         &cfg.per_ip_limit},
        {"timeout", "ATTND_TIMEOUT", 0, 1, 86400, INT, &cfg.conn_timeout},
        {"request-timeout", "ATTND_REQUEST_TIMEOUT", 0, 1, 86400, INT,
         &cfg.request_timeout},
        {"grace", "ATTND_GRACE", 0, 0, 3600, INT, &cfg.shutdown_grace},
        {"drain-delay", "ATTND_DRAIN_DELAY", 0, 0, 3600, INT,
         &cfg.drain_delay},
        {"max-body", "ATTND_MAX_BODY", 1, 1, big, U64, &cfg.max_body},
        {"max-elements", "ATTND_MAX_ELEMENTS", 0, 1, big, I64,
         &l->max_elements},
        {"max-total-elements", "ATTND_MAX_TOTAL_ELEMENTS", 0, 1, big, I64,
         &l->max_total_elements},
        {"max-work", "ATTND_MAX_WORK", 0, 1, (int64_t)1 << 62, I64,
         &l->max_work},
        {"max-batch", "ATTND_MAX_BATCH", 0, 1, big, I64, &l->max_batch},
        {"max-seq", "ATTND_MAX_SEQ", 0, 1, big, I64, &l->max_seq},
        {"max-head-size", "ATTND_MAX_HEAD_SIZE", 0, 1, big, I64,
         &l->max_head_size},
        {"max-depth", "ATTND_MAX_DEPTH", 0, 4, 1000, INT, &l->max_depth},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    const server_config defaults = cfg;

    struct option opts[NSPECS + 5];
    for (int i = 0; i < NSPECS; i++)
        opts[i] = (struct option){specs[i].flag, required_argument, NULL, i};
    opts[NSPECS] = (struct option){"host", required_argument, NULL, 'H'};
    opts[NSPECS + 1] = (struct option){"help", no_argument, NULL, 'h'};
    opts[NSPECS + 2] = (struct option){"log-format", required_argument,
                                       NULL, 'L'};
    opts[NSPECS + 3] = (struct option){"models", required_argument, NULL,
                                       'M'};
    opts[NSPECS + 4] = (struct option){NULL, 0, NULL, 0};

    const char *given[NSPECS] = {NULL};
    int total_follows = 0;
    const char *host = NULL, *log_format = NULL, *models = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= 0 && c < NSPECS) {
            given[c] = optarg;
        } else if (c == 'H') {
            host = optarg;
        } else if (c == 'L') {
            log_format = optarg;
        } else if (c == 'M') {
            models = optarg;
        } else if (c == 'h') {
            usage(stdout, &defaults);
            return 0;
        } else {
            usage(stderr, &defaults);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "attnd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr, &defaults);
        return 2;
    }
    for (int i = 0; i < NSPECS; i++) {
        if (!apply(&specs[i], given[i]))
            return 2;
        /* Unless set itself, the total cap follows the per-tensor one, so
         * raising --max-elements alone does not leave it behind. */
        if (specs[i].target == &l->max_total_elements && !given[i] &&
            !getenv(specs[i].env))
            total_follows = 1;
    }
    if (total_follows)
        l->max_total_elements = API_TOTAL_PER_ELEMENTS * l->max_elements;
    const char *lf = log_format ? log_format : getenv("ATTND_LOG_FORMAT");
    if (lf && strcmp(lf, "text") != 0 && strcmp(lf, "json") != 0) {
        fprintf(stderr, "attnd: invalid %s \"%s\" (expected text or json)\n",
                log_format ? "--log-format" : "ATTND_LOG_FORMAT", lf);
        return 2;
    }
    cfg.log_json = lf && strcmp(lf, "json") == 0;
    if (!host)
        host = getenv("ATTND_HOST");
    cfg.host = host && *host ? host : NULL;
    /* The model repository: given (flag or variable), it must load; the
     * default ./models is served when it is there (make run, the image). */
    const char *mflag = models ? "--models" : "ATTND_MODELS";
    if (!models)
        models = getenv("ATTND_MODELS");
    const int required = models != NULL;
    if (!models)
        models = "models";
    char err[512];
    const int n = api_models_load(models, required, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "attnd: %s %s: %s\n", required ? mflag : "models",
                models, err);
        return 1;
    }
    cfg.models_dir = models;
    cfg.nmodels = n;
    return server_run(&cfg);
}
