#include "gradcam.h"

#include <stdexcept>

namespace cifake {

namespace {

std::vector<float> to_vec(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

void check_cam_layer(CifakeNetImpl& model, const std::string& layer) {
  if (model.layer_size(layer) >= 0) return;
  std::string names;
  for (const auto& l : model.layer_names()) names += (names.empty() ? "" : ", ") + l;
  throw std::invalid_argument("layer: unknown layer '" + layer + "' (valid: " + names + ")");
}

GradCamResult grad_cam(CifakeNetImpl& model, const torch::Tensor& x, const GradCamOptions& o) {
  GradCamResult r;
  r.n = x.size(0);
  r.layer = o.layer.empty() ? model.default_cam_layer() : o.layer;
  check_cam_layer(model, r.layer);
  r.layer_size = model.layer_size(r.layer);
  r.out_size = o.out_size;
  if (r.n == 0) return r;

  torch::Tensor acts, grads, logits, targets;
  {
    EvalModeScope eval_mode(model);
    logits = model.forward(x, r.layer, &acts);
    targets = o.target < 0 ? (logits.detach() >= 0).to(torch::kLong)
                           : torch::full({r.n}, o.target, torch::TensorOptions(torch::kLong).device(x.device()));
    auto score = torch::where(targets == 1, logits, -logits);  // the logit of the explained class
    grads = torch::autograd::grad({score.sum()}, {acts})[0];
  }

  torch::NoGradGuard no_grad;
  auto a = acts.detach();
  auto cam = o.hires ? (grads * a).sum(1) : (grads.mean({2, 3}, /*keepdim=*/true) * a).sum(1);
  cam = torch::relu(cam);
  namespace F = torch::nn::functional;
  auto up = F::interpolate(cam.unsqueeze(1), F::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{o.out_size, o.out_size})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(false))
                .squeeze(1);
  r.raw = to_vec(cam);
  r.upsampled = to_vec(up);
  r.raw_max = to_vec(std::get<0>(cam.flatten(1).max(1)));
  r.logits = to_vec(logits.detach());
  auto t = targets.to(torch::kCPU, torch::kInt).contiguous();
  r.targets.assign(t.data_ptr<int32_t>(), t.data_ptr<int32_t>() + r.n);
  if (o.tensors) {
    r.channels = a.size(1);
    r.activations = to_vec(a);  // contiguous() in to_vec gives NCHW order, also for channels-last activations
    r.gradients = to_vec(grads);
  }
  return r;
}

}  // namespace cifake
