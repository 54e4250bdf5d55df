#include "augment.h"

namespace cifake {

torch::Tensor augment(const torch::Tensor& x, const AugmentConfig& a, at::Generator& gen) {
  auto out = x;
  const auto n = x.size(0);
  if (a.hflip) {
    auto flip = (torch::rand({n, 1, 1, 1}, gen, x.options()) < 0.5);
    out = torch::where(flip, out.flip({3}), out);
  }
  if (a.shift > 0) {
    // Integer translations per image, zero fill: nearest-neighbour sampling at exact pixel centres.
    auto opts = x.options();
    auto shifts = torch::randint(-a.shift, a.shift + 1, {n, 2}, gen, opts);
    auto theta = torch::zeros({n, 2, 3}, opts);
    theta.select(1, 0).select(1, 0).fill_(1);
    theta.select(1, 1).select(1, 1).fill_(1);
    theta.select(1, 0).select(1, 2).copy_(shifts.select(1, 0) * (2.0 / out.size(3)));
    theta.select(1, 1).select(1, 2).copy_(shifts.select(1, 1) * (2.0 / out.size(2)));
    namespace F = torch::nn::functional;
    auto grid = F::affine_grid(theta, out.sizes(), /*align_corners=*/false);
    out = F::grid_sample(out, grid,
                         F::GridSampleFuncOptions().mode(torch::kNearest).padding_mode(torch::kZeros).align_corners(false));
  }
  return out;
}

}  // namespace cifake
