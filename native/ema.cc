#include "ema.h"

#include "models.h"

#include <stdexcept>
#include <string>

namespace cifake {

void WeightAverage::start(torch::nn::Module& model) {
  if (!tensors_.empty()) return;
  torch::NoGradGuard no_grad;
  for (const auto& w : weight_tensors(model)) tensors_.push_back(w.clone());  // clone keeps the memory format
  updates_ = 0;
}

void WeightAverage::update(torch::nn::Module& model, double decay) {
  if (swapped_) throw std::logic_error("ema: the averaged weights are in the model; swap them back before training");
  start(model);
  torch::NoGradGuard no_grad;
  auto weights = weight_tensors(model);
  const double d = std::min(decay, (1.0 + updates_) / (10.0 + updates_));
  std::vector<torch::Tensor> averaged, trained;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (at::isFloatingType(weights[i].scalar_type())) {
      averaged.push_back(tensors_[i]);
      trained.push_back(weights[i]);
    } else {
      tensors_[i].copy_(weights[i]);
    }
  }
  // One call per step for all tensors (the multi-tensor kernels where the device has them).
  at::_foreach_mul_(averaged, d);
  at::_foreach_add_(averaged, trained, 1.0 - d);
  ++updates_;
}

void WeightAverage::swap(torch::nn::Module& model) {
  if (tensors_.empty()) throw std::logic_error("ema: no weights were averaged yet (train an epoch with ema first)");
  torch::NoGradGuard no_grad;
  auto weights = weight_tensors(model);
  for (size_t i = 0; i < weights.size(); ++i) {
    auto held = weights[i].clone();
    weights[i].copy_(tensors_[i]);
    tensors_[i] = held;
  }
  swapped_ = !swapped_;
}

void WeightAverage::write(torch::serialize::OutputArchive& archive) const {
  archive.write("updates", c10::IValue(updates_));
  for (size_t i = 0; i < tensors_.size(); ++i) archive.write("t" + std::to_string(i), tensors_[i], /*is_buffer=*/true);
}

void WeightAverage::read(torch::serialize::InputArchive& archive, torch::nn::Module& model, const std::string& path) {
  auto weights = weight_tensors(model);
  std::vector<torch::Tensor> loaded;
  for (size_t i = 0; i < weights.size(); ++i) {
    torch::Tensor t;
    if (!archive.try_read("t" + std::to_string(i), t, /*is_buffer=*/true) || t.sizes() != weights[i].sizes() ||
        t.scalar_type() != weights[i].scalar_type())
      throw std::runtime_error(path + ": its weight average does not match the model (tensor " + std::to_string(i) + ")");
    loaded.push_back(t.to(weights[i].device()).contiguous(weights[i].suggest_memory_format()));
  }
  c10::IValue n;
  tensors_ = std::move(loaded);
  updates_ = archive.try_read("updates", n) && n.isInt() ? n.toInt() : 0;
  swapped_ = false;
}

}  // namespace cifake
