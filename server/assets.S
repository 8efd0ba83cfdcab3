/* The spec, embedded at build time so the binary serves exactly the file it
 * was built with.  The Makefile passes -I. so the path is the repo's. */
    .section .rodata
    .global server_openapi_start
    .global server_openapi_end
server_openapi_start:
    .incbin "openapi.yaml"
server_openapi_end:
    .byte 0
/* The visualizer served at GET / (web/index.html: one page, its CSS and
 * script inline). */
    .global server_web_index_start
    .global server_web_index_end
server_web_index_start:
    .incbin "web/index.html"
server_web_index_end:
    .byte 0
    .section .note.GNU-stack,"",@progbits
