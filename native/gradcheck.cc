#include "gradcheck.h"

#include "random.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <random>

namespace cifake {

namespace {

// Central difference of loss() along element j of `flat`.
double numeric_derivative(torch::Tensor& flat, int64_t j, const std::function<torch::Tensor()>& loss, double eps) {
  const double orig = flat[j].item<double>();
  flat[j] = orig + eps;
  const double up = loss().item<double>();
  flat[j] = orig - eps;
  const double down = loss().item<double>();
  flat[j] = orig;
  return (up - down) / (2 * eps);
}

}  // namespace

GradCheckResult gradient_check(const ModelSpec& spec, uint64_t seed) {
  CifakeNet net{nullptr};
  auto gen = seeded_init(seed, [&] { net = CifakeNet(spec); });
  net->to(torch::kDouble);
  net->train();
  auto x = torch::rand({2, kChannels, kImageSize, kImageSize}, gen, torch::kDouble).requires_grad_(true);
  auto y = torch::tensor({0.0, 1.0}, torch::kDouble);
  // Reseeding before every forward fixes the dropout mask, so the loss is a deterministic function.
  auto dropout_gen = at::detail::createCPUGenerator(seed + 1);
  net->set_generator(dropout_gen);
  std::function<torch::Tensor()> loss_fn = [&]() {
    dropout_gen.set_current_seed(seed + 1);
    return torch::binary_cross_entropy_with_logits(net->forward(x), y);
  };
  std::vector<torch::Tensor> inputs = net->parameters();
  inputs.push_back(x);
  auto grads = torch::autograd::grad({loss_fn()}, inputs);

  GradCheckResult r;
  std::mt19937_64 rng(seed);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto flat = inputs[i].view({-1});
    auto g = grads[i].reshape({-1});
    for (int k = 0; k < 4; ++k) {
      const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(flat.numel()));
      const double numeric = numeric_derivative(flat, j, loss_fn, 1e-6);
      const double analytic = g[j].item<double>();
      const double abs_err = std::abs(numeric - analytic);
      r.max_abs_error = std::max(r.max_abs_error, abs_err);
      r.max_rel_error = std::max(r.max_rel_error, abs_err / std::max(1e-3, std::abs(numeric) + std::abs(analytic)));
      ++r.checked;
    }
  }
  return r;
}

}  // namespace cifake
