// Gradient check: autograd gradients of the BCE loss against central finite differences, in float64.
#pragma once

#include "models.h"

namespace cifake {

struct GradCheckResult {
  double max_abs_error = 0, max_rel_error = 0;
  int64_t checked = 0;
};

GradCheckResult gradient_check(const ModelSpec& spec, uint64_t seed);

}  // namespace cifake
