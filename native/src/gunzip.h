#ifndef IMAGE_TS_GUNZIP_H
#define IMAGE_TS_GUNZIP_H
#include <node_api.h>

/* Adds gunzipOpen, gunzipPush and gunzipEnd to the addon's exports (only built with HAVE_ISAL). */
napi_status gunzip_register(napi_env env, napi_value exports);

#endif
