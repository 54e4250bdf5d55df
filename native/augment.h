// Training-time augmentation of a float batch: random horizontal flips, integer shifts, CutMix.
#pragma once

#include <torch/torch.h>

namespace cifake {

struct AugmentConfig {
  bool hflip = false;
  int64_t shift = 0;  // max translation in pixels, zero fill
  double cutmix = 0;  // probability that a batch is cut-mixed (cutmix below)
  // Whether augment() has work: its per-image ops only. cutmix() is separate (it also mixes the
  // targets) and returns at once when off.
  bool any() const { return hflip || shift > 0; }
};

// x: float N x C x H x W. Draws from `gen` (the trainer's generator), flips first, then shifts.
torch::Tensor augment(const torch::Tensor& x, const AugmentConfig& a, at::Generator& gen);

// CutMix (Yun et al., ICCV 2019) with probability p for the batch: one box covering a share
// 1 - lam of the image, lam ~ U(0, 1), is pasted into every image from the same place in another
// image of the batch (a seeded permutation), and the BCE targets mix by the pasted area. Updates
// x (N x C x H x W, not shared with the dataset) and target (N) in place of the caller's.
void cutmix(torch::Tensor& x, torch::Tensor& target, double p, at::Generator& gen);

}  // namespace cifake
