// status_macros.h: the small helpers Debian's Abseil lacks (no RETURN_IF_ERROR /
// ASSIGN_OR_RETURN macros). Thread-safety: stateless.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the enclosing function if `expr` yields a non-OK absl::Status.
#define ECMPLB_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status ecmplb_status_ = (expr);          \
    if (!ecmplb_status_.ok()) return ecmplb_status_; \
  } while (0)

// ECMPLB_ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on error
// returns its status from the enclosing function, otherwise moves the value into `lhs`,
// which may be a declaration (`auto x`, `const Foo& y`) or an existing variable.
#define ECMPLB_STATUS_CONCAT_INNER_(a, b) a##b
#define ECMPLB_STATUS_CONCAT_(a, b) ECMPLB_STATUS_CONCAT_INNER_(a, b)
#define ECMPLB_ASSIGN_OR_RETURN(lhs, expr) \
  ECMPLB_ASSIGN_OR_RETURN_IMPL_(ECMPLB_STATUS_CONCAT_(ecmplb_statusor_, __LINE__), lhs, expr)
#define ECMPLB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = *std::move(tmp)
