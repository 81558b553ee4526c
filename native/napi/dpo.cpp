// N-API binding for the dpo family: unwrap, call the core, wrap. Filled in by the dpo issue.
#include <napi.h>

#include "util.h"

void unigap_napi_register_dpo(Napi::Env, Napi::Object) {}
