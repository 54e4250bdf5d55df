#include "amp.h"

#include <ATen/autocast_mode.h>

#include <stdexcept>

namespace cifake {

Amp parse_amp(const std::string& name, const torch::Device& device) {
  if (name == "none" || name.empty()) return Amp::none;
  if (name == "bf16") return Amp::bf16;
  if (name == "fp16") {
    if (!device.is_cuda())
      throw std::invalid_argument("amp: 'fp16' needs a CUDA device (device is " + device.str() +
                                  "); use 'bf16' or 'none' on CPU");
    return Amp::fp16;
  }
  throw std::invalid_argument("amp: unknown mode '" + name + "' (allowed: none, bf16, fp16)");
}

bool LossScaler::unscale_and_check(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, finite;
  for (auto& p : m.parameters())
    if (p.grad().defined()) {
      grads.push_back(p.grad());
      finite.push_back(torch::isfinite(p.grad()).all());
    }
  // One read back to the host per step, not one per parameter.
  if (!finite.empty() && !torch::stack(finite).all().item<bool>()) {
    scale *= 0.5;
    good_steps = 0;
    ++skipped_steps;
    return false;
  }
  for (auto& g : grads) g.mul_(1.0 / scale);
  if (++good_steps == 2000) {
    scale *= 2.0;
    good_steps = 0;
  }
  return true;
}

AutocastScope::AutocastScope(Amp amp, const torch::Device& device) : active_(amp != Amp::none), type_(device.type()) {
  if (!active_) return;
  const auto dtype = amp == Amp::bf16 ? at::kBFloat16 : at::kHalf;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, dtype);
#else
  if (type_ == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(type_, false);
#else
  if (type_ == c10::DeviceType::CUDA) at::autocast::set_enabled(false);
  else at::autocast::set_cpu_enabled(false);
#endif
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

}  // namespace cifake
