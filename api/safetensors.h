/* safetensors.h -- a bounds-checked reader of the safetensors format.
 *
 * The format (huggingface/safetensors): an 8-byte little-endian unsigned
 * header length N, N bytes of UTF-8 JSON
 *     {"<name>": {"dtype": "F32", "shape": [d0, ...],
 *                 "data_offsets": [begin, end]}, ...,
 *      "__metadata__": {"<key>": "<string>", ...}}      (optional)
 * then the data: offsets are relative to the byte after the header, the
 * tensors tile the data exactly (no gap, no overlap, nothing after), and
 * values are little-endian, row-major.
 *
 * Everything in the file is checked before any value is read: a header
 * larger than the file, JSON that is not an object of tensor entries, an
 * unknown dtype, a shape whose byte size is not end - begin (or
 * overflows), offsets past the end of the file (a truncated file), gaps
 * and overlaps.  Every error is a sentence naming the file (the `label`
 * given) and, where there is one, the tensor; no function here aborts or
 * reads outside the buffer, whatever the bytes (tests/fuzz/
 * fuzz_safetensors.c).
 */
#ifndef ATTND_API_SAFETENSORS_H
#define ATTND_API_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define API_ST_MAX_RANK 8
/* Headers above this are refused (the reference implementation's limit). */
#define API_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct api_st_tensor {
    char *name;                     /* malloc'd */
    char dtype[8];                  /* "F32", "F16", "I64", ... */
    int rank;
    int64_t shape[API_ST_MAX_RANK];
    uint64_t begin, end;            /* byte offsets into the data */
} api_st_tensor;

typedef struct api_st_file {
    char label[256];                /* the file name errors say */
    unsigned char *buf;             /* the whole file (owned when read by
                                     * api_st_open; borrowed by parse) */
    size_t size;
    int owned;
    const unsigned char *data;      /* buf + 8 + N */
    uint64_t data_size;
    int ntensors;
    api_st_tensor *tensors;         /* sorted by begin offset */
} api_st_file;

/* Reads the file at path whole and parses it as api_st_parse does (label:
 * path).  Returns 0, or -1 with a message in err (the file is then
 * empty and api_st_close is still safe). */
int api_st_open(api_st_file *f, const char *path, char *err, size_t cap);

/* Parses len bytes at buf (kept, not copied: buf must outlive f). */
int api_st_parse(api_st_file *f, const unsigned char *buf, size_t len,
                 const char *label, char *err, size_t cap);

/* The tensor of that name, or NULL. */
const api_st_tensor *api_st_find(const api_st_file *f, const char *name);

/* Copies tensor `name` into dst (numel floats) after checking that it
 * exists, is F32, and has exactly the given shape; errors name the file,
 * the tensor and the expected shape ("model.safetensors: tensor
 * lm_head.weight has shape [65, 32], expected [65, 64]").  Returns 0 or -1
 * with err set. */
int api_st_read_f32(const api_st_file *f, const char *name, float *dst,
                    int rank, const int64_t *shape, char *err, size_t cap);

/* Writes "[d0, d1, ...]" into out. */
void api_st_shape_text(char *out, size_t cap, int rank, const int64_t *shape);

void api_st_close(api_st_file *f);

/* printf into err (cap bytes; err may be NULL) and return -1: how this
 * reader and the model loader report an error. */
int api_st_errorf(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
