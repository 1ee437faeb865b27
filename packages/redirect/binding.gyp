{
  "targets": [
    {
      "target_name": "mesh_redirect",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/redirect_linux.c"],
          "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
        }, {
          "sources": ["native/redirect_stub.c"]
        }]
      ]
    }
  ]
}
