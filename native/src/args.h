#ifndef IMAGE_TS_ARGS_H
#define IMAGE_TS_ARGS_H
/* Argument checks shared by the addon's functions: each throws a TypeError and returns -1 on a bad argument. */
#include <node_api.h>

static inline int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return -1;
  }
  return 0;
}

/* For trailing optional arguments: argv is filled up to `most`, those not passed are undefined. */
static inline int get_args_between(napi_env env, napi_callback_info info, size_t least, size_t most, napi_value *argv) {
  size_t argc = most;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < least) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return -1;
  }
  return 0;
}

static inline int get_u32(napi_env env, napi_value v, const char *what, uint32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

/* An optional uint32: `absent` when undefined. */
static inline int get_opt_u32(napi_env env, napi_value v, const char *what, uint32_t absent, uint32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined) {
    *out = absent;
    return 0;
  }
  return get_u32(env, v, what, out);
}

static inline int get_double(napi_env env, napi_value v, const char *what, double *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  return napi_get_value_double(env, v, out) == napi_ok ? 0 : -1;
}

static inline int get_bytes(napi_env env, napi_value v, const char *what, void **data, size_t *len) {
  bool is_typed;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok) return -1;
  if (!is_typed) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  if (napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) != napi_ok) return -1;
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  return 0;
}

#endif
