/* fuzz_safetensors.c -- libFuzzer over the safetensors reader
 * (api/safetensors.c), the part of model loading that reads bytes someone
 * else wrote.
 *
 * Input: the bytes of a .safetensors file.  A file the reader accepts must
 * keep its promises -- every tensor inside the data, the tensors tiling
 * it, each byte size equal to its dtype times its shape -- and every F32
 * tensor is read back through api_st_read_f32 with its own shape (and
 * refused with another); any broken promise aborts, the sanitizers catch
 * the rest.  A refused file must come back empty with a message naming
 * the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/safetensors.h"

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "reader broke a promise: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    api_st_file f;
    char err[512];
    if (api_st_parse(&f, data, size, "fuzz.safetensors", err, sizeof err)) {
        require(f.ntensors == 0 && f.tensors == NULL, "refused but not empty");
        require(strncmp(err, "fuzz.safetensors: ", 18) == 0,
                "error without the file name");
        return 0;
    }
    uint64_t at = 0;
    for (int i = 0; i < f.ntensors; i++) {
        const api_st_tensor *t = &f.tensors[i];
        require(t->begin == at && t->end >= t->begin, "tensors do not tile");
        require(t->end <= f.data_size, "tensor past the data");
        require(f.data + t->end <= data + size, "data past the buffer");
        at = t->end;
        if (strcmp(t->dtype, "F32") != 0)
            continue;
        const uint64_t n = (t->end - t->begin) / 4;
        float *dst = malloc(n ? n * sizeof *dst : 1);
        require(dst != NULL, "malloc");
        require(api_st_read_f32(&f, t->name, dst, t->rank, t->shape, err,
                                sizeof err) == 0, "own shape refused");
        int64_t wrong[API_ST_MAX_RANK + 1];
        memcpy(wrong, t->shape, sizeof t->shape);
        wrong[t->rank] = 2;
        require(api_st_read_f32(&f, t->name, dst, t->rank + 1, wrong, err,
                                sizeof err) == -1, "wrong rank accepted");
        free(dst);
    }
    require(at == f.data_size, "data after the last tensor");
    api_st_close(&f);
    return 0;
}
