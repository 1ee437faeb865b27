// Built on every platform but Linux: the module loads, reports `supported: false`, and the
// JS layer throws ERR_REDIRECT_NOT_SUPPORTED from every call. Installing never fails.
#define NAPI_VERSION 8
#include <node_api.h>

NAPI_MODULE_INIT() {
  napi_value f;
  if (napi_get_boolean(env, false, &f) == napi_ok) {
    napi_set_named_property(env, exports, "supported", f);
  }
  return exports;
}
