/* main.c -- attnd's command line: flags, environment, defaults. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
"  --threads N              HTTP threads, and computations at  ATTND_THREADS\n"
"                           once (compute workers); default\n"
"                           the number of cores (%d here)\n"
"  --max-connections N      open connections in all; past it   ATTND_MAX_CONNECTIONS\n"
"                           the keep-alive connection idle\n"
"                           longest is closed, or the new\n"
"                           client gets 503 connection_limit;\n"
"                           default %d\n"
"  --max-per-ip N           open connections from one address; ATTND_MAX_PER_IP\n"
"                           default %d\n"
"  --timeout SECONDS        close a connection idle this long; ATTND_TIMEOUT\n"
"                           default %d\n"
"  --header-timeout SECONDS longest a new connection's first   ATTND_HEADER_TIMEOUT\n"
"                           request line and headers may take\n"
"                           to arrive (later ones on a keep-\n"
"                           alive connection: --timeout), not\n"
"                           restarted by each byte; default %d\n"
"  --request-timeout SECONDS  longest a request body may take   ATTND_REQUEST_TIMEOUT\n"
"                           to arrive, from its headers; then\n"
"                           the connection is closed (logged as\n"
"                           408); default %d\n"
"  --send-timeout SECONDS   close a connection whose client    ATTND_SEND_TIMEOUT\n"
"                           reads none of its answer this long;\n"
"                           default %d\n"
"  --compute-timeout SECONDS  stop a computation running this   ATTND_COMPUTE_TIMEOUT\n"
"                           long: 503 compute_timeout; 0 = no\n"
"                           limit; default %d\n"
"  --grace SECONDS          on SIGINT/SIGTERM, how long        ATTND_GRACE\n"
"                           in-flight requests may take to\n"
"                           finish; default %d\n"
"  --drain-delay SECONDS    on SIGINT/SIGTERM, first keep      ATTND_DRAIN_DELAY\n"
"                           serving this long with /readyz\n"
"                           answering 503; default %d\n"
"  --log-format FORMAT      access log: text or json (JSON     ATTND_LOG_FORMAT\n"
"                           lines); default text\n"
"\n"
"Security (SIGHUP re-reads the TLS pair and the key file; a bad one is\n"
"logged and the one in use kept)\n"
"  --tls-cert FILE          serve HTTPS with this PEM          ATTND_TLS_CERT\n"
"                           certificate (its chain may follow)\n"
"  --tls-key FILE           and this unencrypted PEM key       ATTND_TLS_KEY\n"
"  --tls-priorities STRING  GnuTLS priority string; default    ATTND_TLS_PRIORITIES\n"
"                           TLS 1.2 and 1.3 only:\n"
"                           NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2\n"
"  --api-keys FILE          require Authorization: Bearer KEY  ATTND_API_KEYS\n"
"                           with a key of FILE (one a line, #\n"
"                           comments, 16+ characters) on every\n"
"                           route but /healthz, /readyz, GET /\n"
"                           and OPTIONS; else 401\n"
"  --metrics-public         /metrics answers without a key     ATTND_METRICS_PUBLIC=1\n"
"  --metrics-versions       /metrics names the attnd and       ATTND_METRICS_VERSIONS=1\n"
"                           libmicrohttpd versions to anyone\n"
"                           (otherwise only under a key)\n"
"  --cors-origin ORIGIN     let pages from ORIGIN              ATTND_CORS_ORIGINS\n"
"                           (scheme://host[:port]) call the    (comma-separated)\n"
"                           API; repeatable; default * (any)\n"
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
"  --max-memory BYTES       what the requests in progress may  ATTND_MAX_MEMORY\n"
"                           reserve together (bodies, and 3x\n"
"                           each body for its handler); past\n"
"                           it 503 memory_budget, Retry-After;\n"
"                           K, M, G; default 3/4 of the memory\n"
"                           or the cgroup's limit (%lluM here)\n"
"\n"
"  --healthcheck            GET /healthz from the server on\n"
"                           ATTND_PORT (HTTPS if ATTND_TLS_CERT\n"
"                           is set), exit 0 on a 200: for a\n"
"                           container's HEALTHCHECK\n"
"  -h, --help               this text\n"
"\n"
"SIGINT/SIGTERM stop accepting connections, let in-flight requests finish\n"
"(up to --grace seconds; stalled ones are cut after 1 s without progress;\n"
"computations still running then are cancelled and answered 503) and exit\n"
"0.  SIGHUP is logged and re-reads the TLS pair and the API key file\n"
"(see Security); it never stops the server.  One access-log line per\n"
"request goes to stderr:\n"
"METHOD PATH STATUS BYTES MICROSECONDSus, or with --log-format json\n"
"{\"ts\",\"method\",\"path\",\"status\",\"bytes\",\"duration_us\",\"remote\"}.\n",
            d->port, d->threads, d->conn_limit, d->per_ip_limit,
            d->conn_timeout, d->header_timeout, d->request_timeout,
            d->send_timeout, d->compute_timeout, d->shutdown_grace,
            d->drain_delay,
            (long long)d->limits.max_elements, API_TOTAL_PER_ELEMENTS,
            (long long)d->limits.max_total_elements,
            (long long)d->limits.max_work,
            (long long)d->limits.max_batch, (long long)d->limits.max_seq,
            (long long)d->limits.max_head_size, d->limits.max_depth,
            (unsigned long long)(d->max_memory >> 20));
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

/* A flag's value, else its variable's, else NULL ("" = unset too). */
static const char *flag_or_env(const char *flag_value, const char *env)
{
    const char *s = flag_value ? flag_value : getenv(env);
    return s && *s ? s : NULL;
}

/* A switch: given as a flag (1), else its variable (1/true/yes or
 * 0/false/no), else off.  -1 on an invalid variable. */
static int switch_or_env(int flag, const char *env)
{
    if (flag > 0)
        return 1;
    const char *s = getenv(env);
    if (!s || !*s || !strcmp(s, "0") || !strcasecmp(s, "false") ||
        !strcasecmp(s, "no"))
        return 0;
    if (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes"))
        return 1;
    fprintf(stderr, "attnd: invalid %s \"%s\" (expected 1 or 0)\n", env, s);
    return -1;
}

/* The TLS, key, CORS and metrics settings (issue 19) into cfg; origins
 * given as flags are in *origins, ATTND_CORS_ORIGINS is read when there
 * are none.  Returns 0 after saying why on an invalid value. */
static int security_options(server_config *cfg, const char *tls_cert,
                            const char *tls_key, const char *tls_prio,
                            const char *api_keys, int metrics_public,
                            int metrics_versions, const char ***origins,
                            int *norigins)
{
    cfg->tls_cert = flag_or_env(tls_cert, "ATTND_TLS_CERT");
    cfg->tls_key = flag_or_env(tls_key, "ATTND_TLS_KEY");
    cfg->tls_priorities = flag_or_env(tls_prio, "ATTND_TLS_PRIORITIES");
    cfg->api_keys = flag_or_env(api_keys, "ATTND_API_KEYS");
    cfg->metrics_public = switch_or_env(metrics_public, "ATTND_METRICS_PUBLIC");
    cfg->metrics_versions = switch_or_env(metrics_versions,
                                          "ATTND_METRICS_VERSIONS");
    if (cfg->metrics_public < 0 || cfg->metrics_versions < 0)
        return 0;
    const char *env = getenv("ATTND_CORS_ORIGINS");
    const int from_env = *norigins == 0 && env && *env;
    if (from_env) {
        /* "a, b c": commas or blanks between origins */
        char *copy = strdup(env);
        const char **list = calloc(strlen(env) / 2 + 2, sizeof *list);
        if (!copy || !list)
            return 0;
        for (char *save = NULL, *t = strtok_r(copy, ", \t", &save); t;
             t = strtok_r(NULL, ", \t", &save))
            list[(*norigins)++] = t;
        free(*origins);
        *origins = list;
    }
    for (int i = 0; i < *norigins; i++) {
        const char *o = (*origins)[i];
        if (!server_cors_valid_origin(o)) {
            fprintf(stderr, "attnd: invalid %s \"%s\" (expected * or "
                    "scheme://host[:port], as a browser sends Origin: "
                    "https://app.example.com, no path or trailing /)\n",
                    from_env ? "ATTND_CORS_ORIGINS" : "--cors-origin", o);
            return 0;
        }
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
        .header_timeout = 10,
        .send_timeout = 10,
        .compute_timeout = 60,
        .max_memory = server_budget_default(),
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
        {"header-timeout", "ATTND_HEADER_TIMEOUT", 0, 1, 86400, INT,
         &cfg.header_timeout},
        {"send-timeout", "ATTND_SEND_TIMEOUT", 0, 1, 86400, INT,
         &cfg.send_timeout},
        {"compute-timeout", "ATTND_COMPUTE_TIMEOUT", 0, 0, 86400, INT,
         &cfg.compute_timeout},
        {"max-memory", "ATTND_MAX_MEMORY", 1, 1 << 20, 1LL << 50, U64,
         &cfg.max_memory},
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

    struct option opts[NSPECS + 13];
    for (int i = 0; i < NSPECS; i++)
        opts[i] = (struct option){specs[i].flag, required_argument, NULL, i};
    opts[NSPECS] = (struct option){"host", required_argument, NULL, 'H'};
    opts[NSPECS + 1] = (struct option){"help", no_argument, NULL, 'h'};
    opts[NSPECS + 2] = (struct option){"log-format", required_argument,
                                       NULL, 'L'};
    opts[NSPECS + 3] = (struct option){"tls-cert", required_argument, NULL,
                                       'C'};
    opts[NSPECS + 4] = (struct option){"tls-key", required_argument, NULL,
                                       'K'};
    opts[NSPECS + 5] = (struct option){"tls-priorities", required_argument,
                                       NULL, 'P'};
    opts[NSPECS + 6] = (struct option){"api-keys", required_argument, NULL,
                                       'A'};
    opts[NSPECS + 7] = (struct option){"cors-origin", required_argument,
                                       NULL, 'O'};
    opts[NSPECS + 8] = (struct option){"metrics-public", no_argument, NULL,
                                       'M'};
    opts[NSPECS + 9] = (struct option){"metrics-versions", no_argument, NULL,
                                       'V'};
    opts[NSPECS + 10] = (struct option){"healthcheck", no_argument, NULL,
                                        'Z'};
    opts[NSPECS + 11] = (struct option){"models", required_argument, NULL,
                                        'D'};
    opts[NSPECS + 12] = (struct option){NULL, 0, NULL, 0};

    const char *given[NSPECS] = {NULL};
    int total_follows = 0;
    const char *host = NULL, *log_format = NULL, *models = NULL;
    const char *tls_cert = NULL, *tls_key = NULL, *tls_prio = NULL;
    const char *api_keys = NULL;
    int metrics_public = -1, metrics_versions = -1;
    /* static: the server borrows the list (and ATTND_CORS_ORIGINS's copy)
     * for as long as the process lives */
    static const char **origins;
    origins = calloc((size_t)argc + 1, sizeof *origins);
    int norigins = 0;
    if (!origins)
        return 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= 0 && c < NSPECS) {
            given[c] = optarg;
        } else if (c == 'H') {
            host = optarg;
        } else if (c == 'L') {
            log_format = optarg;
        } else if (c == 'C') {
            tls_cert = optarg;
        } else if (c == 'K') {
            tls_key = optarg;
        } else if (c == 'P') {
            tls_prio = optarg;
        } else if (c == 'A') {
            api_keys = optarg;
        } else if (c == 'O') {
            origins[norigins++] = optarg;
        } else if (c == 'M') {
            metrics_public = 1;
        } else if (c == 'V') {
            metrics_versions = 1;
        } else if (c == 'Z') {
            return server_healthcheck();
        } else if (c == 'D') {
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
    if (!security_options(&cfg, tls_cert, tls_key, tls_prio, api_keys,
                          metrics_public, metrics_versions, &origins,
                          &norigins))
        return 2;
    cfg.cors_origins = origins;
    cfg.n_cors_origins = norigins;
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
