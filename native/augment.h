// Training-time augmentation of a float batch: random horizontal flips and integer shifts.
#pragma once

#include <torch/torch.h>

namespace cifake {

struct AugmentConfig {
  bool hflip = false;
  int64_t shift = 0;  // max translation in pixels, zero fill
  bool any() const { return hflip || shift > 0; }
};

// x: float N x C x H x W. Draws from `gen` (the trainer's generator), flips first, then shifts.
torch::Tensor augment(const torch::Tensor& x, const AugmentConfig& a, at::Generator& gen);

}  // namespace cifake
