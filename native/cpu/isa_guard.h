// Internal helper for family dispatch units: the tier to use for this call, or an error status when
// UNIGAP_ISA asked for something the CPU lacks.
#ifndef UNIGAP_CPU_ISA_GUARD_H
#define UNIGAP_CPU_ISA_GUARD_H

#include "unigap/common.h"

namespace unigap {

// Returns UNIGAP_STATUS_OK and sets *tier, or UNIGAP_STATUS_UNSUPPORTED_ISA.
inline unigap_status current_tier(unigap_isa *tier) {
  if (unigap_isa_env_error(nullptr, 0)) return UNIGAP_STATUS_UNSUPPORTED_ISA;
  *tier = unigap_isa_active();
  return UNIGAP_STATUS_OK;
}

}  // namespace unigap

#endif
