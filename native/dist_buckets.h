// Gradient bucketing for data-parallel training on a DistGroup (dist.h), as DDP does: parameters
// in reverse order (the order backward produces them), ~25 MB a bucket, one all-reduce per bucket.
#pragma once

#include "dist.h"

#include <torch/torch.h>

#include <vector>

namespace cifake {

class GradBuckets {
 public:
  // Sums the gradients of `model` across the ranks of `group`, together with `flags` (summed
  // too, and returned), and hands every rank rank 0's floating-point buffers (BN running statistics).
  std::vector<float> sync(torch::nn::Module& model, DistGroup& group, const std::vector<float>& flags,
                          const torch::Device& device);

 private:
  void build(torch::nn::Module& model);
  std::vector<std::vector<torch::Tensor>> buckets_;
};

}  // namespace cifake
