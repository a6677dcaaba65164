// status_util.h: the one small helper Debian's Abseil lacks (no RETURN_IF_ERROR macros).
// Thread-safety: stateless.
#pragma once

#include "absl/status/status.h"

// Returns from the enclosing function if `expr` yields a non-OK absl::Status.
#define ECMPLB_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::absl::Status ecmplb_status_ = (expr);       \
    if (!ecmplb_status_.ok()) return ecmplb_status_; \
  } while (0)
