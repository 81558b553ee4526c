// N-API binding for the similarity family: unwrap, call the core, wrap. Filled in by the similarity issue.
#include <napi.h>

#include "util.h"

void unigap_napi_register_similarity(Napi::Env, Napi::Object) {}
