// N-API binding for the logprobs family: unwrap, call the core, wrap. Filled in by the logprobs issue.
#include <napi.h>

#include "util.h"

void unigap_napi_register_logprobs(Napi::Env, Napi::Object) {}
