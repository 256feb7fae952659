/*
 * openapi_blob.S - embeds openapi.yaml (the repository's API description)
 * in the binary, so GET /openapi.yaml serves exactly the document that was
 * built with it. Read-only data; no threads involved.
 */
    .section .rodata
    .global api_openapi_yaml
    .type api_openapi_yaml, @object
api_openapi_yaml:
    .incbin "openapi.yaml"
api_openapi_yaml_end:
    .byte 0
    .balign 8
    .global api_openapi_yaml_len
    .type api_openapi_yaml_len, @object
api_openapi_yaml_len:
    .quad api_openapi_yaml_end - api_openapi_yaml
    .section .note.GNU-stack,"",@progbits
