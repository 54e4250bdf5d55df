#include "models.h"

#include <stdexcept>

namespace cifake {

// Only what keeps the network buildable; the model limits (block and layer counts, widths) are
// TypeScript's (src/config.ts).
void validate_spec(const ModelSpec& s) {
  if (s.conv_filters.empty()) throw std::invalid_argument("model.convFilters: expected at least one conv block");
  for (auto f : s.conv_filters)
    if (f < 1) throw std::invalid_argument("model.convFilters: each must be >= 1");
  for (auto u : s.dense)
    if (u < 1) throw std::invalid_argument("model.dense: each must be >= 1");
  if (!(s.dropout >= 0.0 && s.dropout < 1.0))
    throw std::invalid_argument("model.dropout: must be in [0, 1)");
  if (s.convs_per_block < 1) throw std::invalid_argument("model.convsPerBlock: must be >= 1");
  if (s.members < 1) throw std::invalid_argument("model.members: must be >= 1");
  if ((s.residual || s.convs_per_block > 1) && !(s.same_padding && s.batch_norm))
    throw std::invalid_argument("model.convsPerBlock/residual: need same padding and batch norm");
  int64_t size = kImageSize;
  for (size_t i = 0; i < s.conv_filters.size(); ++i) {
    size = (s.same_padding ? size : size - 2) / 2;
    if (size < 1)
      throw std::invalid_argument("model.convFilters: " + std::to_string(s.conv_filters.size()) +
                                  " conv blocks shrink a 32x32 image to nothing");
  }
}

std::vector<torch::Tensor> weight_tensors(torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (auto& p : model.parameters()) out.push_back(p.detach());
  for (auto& b : model.buffers()) out.push_back(b.detach());
  return out;
}

ConvBlockImpl::ConvBlockImpl(int64_t in_channels, int64_t out_channels, const ModelSpec& spec)
    : hoc_(spec.hoc), fused_(spec.fused_hoc), residual_(spec.residual), padding_(spec.same_padding ? 1 : 0) {
  auto opts = torch::nn::Conv2dOptions(in_channels, out_channels, 3).padding(padding_);
  conv_ = register_module("conv", torch::nn::Conv2d(opts));
  if (hoc_) conv_sq_ = register_module("conv_sq", torch::nn::Conv2d(opts));
  if (spec.batch_norm) bn_ = register_module("bn", torch::nn::BatchNorm2d(out_channels));
  for (int64_t k = 2; k <= spec.convs_per_block; ++k) {
    auto o = torch::nn::Conv2dOptions(out_channels, out_channels, 3).padding(padding_).bias(false);
    more_convs_.push_back(register_module("conv" + std::to_string(k), torch::nn::Conv2d(o)));
    more_bns_.push_back(register_module("bn" + std::to_string(k), torch::nn::BatchNorm2d(out_channels)));
  }
  if (residual_ && in_channels != out_channels) {
    proj_ = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, 1).bias(false)));
    proj_bn_ = register_module("proj_bn", torch::nn::BatchNorm2d(out_channels));
  }
}

// conv(x) + conv'(x^2) == one conv over the channel concatenation [x, x^2] with stacked weights.
std::pair<torch::Tensor, torch::Tensor> ConvBlockImpl::stacked_hoc_kernel() const {
  return {torch::cat({conv_->weight, conv_sq_->weight}, 1), conv_->bias + conv_sq_->bias};
}

torch::Tensor ConvBlockImpl::first_conv(const torch::Tensor& x) {
  if (!hoc_) return conv_->forward(x);
  if (fused_) {
    auto [w, b] = stacked_hoc_kernel();
    return torch::conv2d(torch::cat({x, x * x}, 1), w, b, 1, padding_);
  }
  return conv_->forward(x) + conv_sq_->forward(x * x);
}

// The ReLUs run in place: neither conv, BN, add nor max-pool keeps its output for backward.
torch::Tensor ConvBlockImpl::pre_activation(const torch::Tensor& x) {
  auto y = first_conv(x);
  if (bn_) y = bn_->forward(y);
  for (size_t k = 0; k < more_convs_.size(); ++k) {
    y = more_bns_[k]->forward(more_convs_[k]->forward(torch::relu_(y)));
  }
  if (residual_) y = y + (proj_ ? proj_bn_->forward(proj_->forward(x)) : x);
  return y;
}

namespace {

// conv (weight w, bias b or none) followed by bn, as one conv; keeps w's memory format.
std::pair<torch::Tensor, torch::Tensor> fold_conv_bn(const torch::Tensor& w, const torch::Tensor& b,
                                                     const torch::nn::BatchNorm2d& bn) {
  if (!bn) return {w, b};
  auto scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  auto folded_w = (w * scale.view({-1, 1, 1, 1})).contiguous(w.suggest_memory_format());
  auto shifted = b.defined() ? b - bn->running_mean : -bn->running_mean;
  return {folded_w, shifted * scale + bn->bias};
}

}  // namespace

FoldedBlock ConvBlockImpl::fold() const {
  torch::NoGradGuard no_grad;
  FoldedBlock f;
  auto [w, b] = hoc_ ? stacked_hoc_kernel() : std::make_pair(conv_->weight, conv_->bias);
  std::tie(f.w, f.b) = fold_conv_bn(w.contiguous(conv_->weight.suggest_memory_format()), b, bn_);
  for (size_t k = 0; k < more_convs_.size(); ++k) {
    auto [mw, mb] = fold_conv_bn(more_convs_[k]->weight, torch::Tensor(), more_bns_[k]);
    f.more_w.push_back(mw);
    f.more_b.push_back(mb);
  }
  if (proj_) std::tie(f.proj_w, f.proj_b) = fold_conv_bn(proj_->weight, torch::Tensor(), proj_bn_);
  return f;
}

torch::Tensor ConvBlockImpl::pooled_features(const torch::Tensor& x, const FoldedBlock& f) const {
  auto in = hoc_ ? torch::cat({x, x * x}, 1) : x;
  auto y = torch::conv2d(in, f.w, f.b, 1, padding_);
  for (size_t k = 0; k < f.more_w.size(); ++k) y = torch::conv2d(torch::relu_(y), f.more_w[k], f.more_b[k], 1, padding_);
  if (residual_) y.add_(f.proj_w.defined() ? torch::conv2d(x, f.proj_w, f.proj_b) : x);
  return torch::max_pool2d(y, 2).relu_();
}

CifakeNetImpl::CifakeNetImpl(const ModelSpec& spec) : spec_(spec) {
  validate_spec(spec);
  if (spec.members > 1) {
    auto one = spec;
    one.members = 1;
    for (int64_t k = 1; k <= spec.members; ++k)
      members_.push_back(register_module("member" + std::to_string(k), std::make_shared<CifakeNetImpl>(one)));
    return;
  }
  int64_t channels = kChannels, size = kImageSize;
  for (size_t i = 0; i < spec.conv_filters.size(); ++i) {
    blocks_.push_back(register_module("block" + std::to_string(i + 1),
                                      ConvBlock(channels, spec.conv_filters[i], spec)));
    channels = spec.conv_filters[i];
    if (!spec.same_padding) size -= 2;
    sizes_.push_back(size);
    size /= 2;
  }
  int64_t features = channels * size * size;
  for (size_t i = 0; i < spec.dense.size(); ++i) {
    dense_.push_back(register_module("dense" + std::to_string(i + 1),
                                     torch::nn::Linear(features, spec.dense[i])));
    features = spec.dense[i];
  }
  out_ = register_module("out", torch::nn::Linear(features, 1));
}

void CifakeNetImpl::set_generator(at::Generator g) {
  for (auto& m : members_) m->set_generator(g);
  generator_ = std::move(g);
}

int64_t CifakeNetImpl::block_of(const std::string& layer, bool* before_pool) const {
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const auto n = std::to_string(i + 1);
    if (layer == "conv" + n || layer == "pool" + n) {
      *before_pool = layer[0] == 'c';
      return static_cast<int64_t>(i);
    }
  }
  throw std::invalid_argument("layer: unknown layer '" + layer + "'");
}

torch::Tensor CifakeNetImpl::forward_until(const torch::Tensor& input, const std::string& layer) {
  bool before_pool = false;
  const auto last = block_of(layer, &before_pool);
  auto x = input;
  for (int64_t i = 0; i < last; ++i) x = blocks_[i]->pooled_features(x);
  return before_pool ? blocks_[last]->features(x) : blocks_[last]->pooled_features(x);
}

torch::Tensor CifakeNetImpl::forward_from(const std::string& layer, const torch::Tensor& activation) {
  bool before_pool = false;
  const auto first = block_of(layer, &before_pool);
  auto x = before_pool ? blocks_[first]->pool(activation) : activation;
  for (size_t i = first + 1; i < blocks_.size(); ++i) x = blocks_[i]->pooled_features(x);
  return head(x);
}

torch::Tensor CifakeNetImpl::head(torch::Tensor x) {
  x = x.flatten(1);
  for (auto& d : dense_) x = d->forward(x).relu_();
  if (spec_.dropout > 0 && is_training()) {
    // torch::dropout's CPU arithmetic (a Bernoulli mask scaled by 1 / (1 - p)), drawn from this
    // model's generator instead of libtorch's global one.
    auto noise = torch::empty_like(x);
    if (generator_) noise.bernoulli_(1 - spec_.dropout, *generator_);
    else noise.bernoulli_(1 - spec_.dropout);
    noise.div_(1 - spec_.dropout);
    x = x * noise;
  }
  return out_->forward(x).view({-1});
}

torch::Tensor CifakeNetImpl::forward(const torch::Tensor& input, const std::string& tap_layer,
                                     torch::Tensor* tap) {
  const bool tapped = tap && !tap_layer.empty();
  if (!members_.empty()) {
    if (!tapped) return forward_members(input).mean(1);
    std::vector<torch::Tensor> acts;
    for (auto& m : members_) acts.push_back(m->forward_until(input, tap_layer));
    *tap = torch::cat(acts, 1);
    auto slices = tap->chunk(static_cast<int64_t>(members_.size()), 1);
    std::vector<torch::Tensor> logits;
    for (size_t k = 0; k < members_.size(); ++k) logits.push_back(members_[k]->forward_from(tap_layer, slices[k]));
    return torch::stack(logits, 1).mean(1);
  }
  if (tapped) {
    *tap = forward_until(input, tap_layer);
    return forward_from(tap_layer, *tap);
  }
  auto x = input;
  for (auto& b : blocks_) x = b->pooled_features(x);
  return head(x);
}

torch::Tensor CifakeNetImpl::forward_members(const torch::Tensor& input) {
  if (members_.empty()) return forward(input).unsqueeze(1);
  std::vector<torch::Tensor> logits;
  for (auto& m : members_) logits.push_back(m->forward(input));
  return torch::stack(logits, 1);
}

std::vector<FoldedBlock> CifakeNetImpl::fold_batch_norm() const {
  std::vector<FoldedBlock> out;
  for (const auto& m : members_)
    for (auto& f : m->fold_batch_norm()) out.push_back(std::move(f));
  for (const auto& b : blocks_) out.push_back(b->fold());
  return out;
}

torch::Tensor CifakeNetImpl::forward_folded(const torch::Tensor& input, const std::vector<FoldedBlock>& folded) {
  if (!members_.empty()) {
    const auto per = folded.size() / members_.size();
    torch::Tensor sum;
    for (size_t k = 0; k < members_.size(); ++k) {
      std::vector<FoldedBlock> mine(folded.begin() + k * per, folded.begin() + (k + 1) * per);
      auto l = members_[k]->forward_folded(input, mine);
      sum = sum.defined() ? sum.add_(l) : l;
    }
    return sum.div_(static_cast<double>(members_.size()));
  }
  auto x = input;
  for (size_t i = 0; i < blocks_.size(); ++i) x = blocks_[i]->pooled_features(x, folded[i]);
  x = x.flatten(1);
  for (auto& d : dense_) x = d->forward(x).relu_();
  return out_->forward(x).view({-1});
}

std::vector<std::string> CifakeNetImpl::layer_names() const {
  if (!members_.empty()) return members_[0]->layer_names();
  std::vector<std::string> names;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    names.push_back("conv" + std::to_string(i + 1));
    names.push_back("pool" + std::to_string(i + 1));
  }
  return names;
}

std::string CifakeNetImpl::default_cam_layer() const {
  return members_.empty() ? "conv" + std::to_string(blocks_.size()) : members_[0]->default_cam_layer();
}

int64_t CifakeNetImpl::layer_size(const std::string& name) const {
  if (!members_.empty()) return members_[0]->layer_size(name);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    auto n = std::to_string(i + 1);
    if (name == "conv" + n) return sizes_[i];
    if (name == "pool" + n) return sizes_[i] / 2;
  }
  return -1;
}

int64_t CifakeNetImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace cifake
