#include "trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <unistd.h>

namespace cifake {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Distinct, reproducible RNG streams for (seed, epoch).
uint64_t mix_seed(uint64_t seed, int64_t epoch) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFFULL;
}

// Puts a module in eval mode for a scope and restores its previous mode, also on exceptions.
class EvalModeScope {
 public:
  explicit EvalModeScope(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalModeScope() { m_.train(was_training_); }

 private:
  torch::nn::Module& m_;
  bool was_training_;
};

void zero_grad(torch::nn::Module& m) {
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
}

torch::Tensor augment(const torch::Tensor& x, const AugmentConfig& a) {
  auto out = x;
  const auto n = x.size(0);
  if (a.hflip) {
    auto flip = (torch::rand({n, 1, 1, 1}, x.options()) < 0.5);
    out = torch::where(flip, out.flip({3}), out);
  }
  if (a.shift > 0) {
    // Integer translations per image, zero fill: nearest-neighbour sampling at exact pixel centres.
    auto opts = x.options();
    auto shifts = torch::randint(-a.shift, a.shift + 1, {n, 2}, opts);
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

// Forward passes inside this scope run under autocast in the trainer's precision.
class AutocastScope {
 public:
  AutocastScope(Amp amp, const torch::Device& device) : active_(amp != Amp::none), type_(device.type()) {
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
  ~AutocastScope() {
    if (!active_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(type_, false);
#else
    if (type_ == c10::DeviceType::CUDA) at::autocast::set_enabled(false);
    else at::autocast::set_cpu_enabled(false);
#endif
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_;
  c10::DeviceType type_;
};

}  // namespace

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

torch::Device parse_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device("cuda:0") : torch::Device("cpu");
  if (name != "cpu" && name.rfind("cuda", 0) != 0)
    throw std::invalid_argument("device: unknown device '" + name + "' (allowed: cpu, cuda, cuda:N, auto)");
  torch::Device d("cpu");
  try {
    d = torch::Device(name);
  } catch (const c10::Error&) {
    throw std::invalid_argument("device: cannot parse '" + name + "' (allowed: cpu, cuda, cuda:N, auto)");
  }
  if (d.is_cuda()) {
    if (!torch::cuda::is_available())
      throw std::invalid_argument("device: '" + name +
                                  "' requested, but this libtorch build has no CUDA support or sees no CUDA device "
                                  "(use --device cpu, or build against a CUDA libtorch)");
    int64_t index = d.has_index() ? d.index() : 0;
    if (index >= static_cast<int64_t>(torch::cuda::device_count()))
      throw std::invalid_argument("device: '" + name + "' does not exist (" +
                                  std::to_string(torch::cuda::device_count()) + " CUDA device(s) visible)");
    if (!d.has_index()) d = torch::Device(torch::kCUDA, 0);
  }
  return d;
}

Trainer::Trainer(const ModelSpec& spec, const std::string& device, uint64_t seed,
                 const OptimizerConfig& optimizer, bool channels_last, const std::string& amp)
    : spec_(spec),
      device_(parse_device(device)),
      channels_last_(channels_last),
      amp_(parse_amp(amp, device_)),
      optimizer_config_(optimizer) {
  torch::manual_seed(seed);  // the weight initialisation
  model_ = CifakeNet(spec);
  model_->to(device_);
  if (channels_last_) {
    torch::NoGradGuard no_grad;
    for (auto& p : model_->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
  if (optimizer.name == "adamw") {
    optimizer_ = std::make_unique<torch::optim::AdamW>(
        model_->parameters(), torch::optim::AdamWOptions(optimizer.lr)
                                  .betas({optimizer.beta1, optimizer.beta2})
                                  .weight_decay(optimizer.weight_decay));
  } else if (optimizer.name == "adam") {
    optimizer_ = std::make_unique<torch::optim::Adam>(
        model_->parameters(), torch::optim::AdamOptions(optimizer.lr)
                                  .betas({optimizer.beta1, optimizer.beta2})
                                  .weight_decay(optimizer.weight_decay));
  } else {
    throw std::invalid_argument("optimizer.name: unknown optimizer '" + optimizer.name + "' (allowed: adam, adamw)");
  }
}

torch::Tensor Trainer::upload(const uint8_t* data, at::IntArrayRef shape) const {
  auto host = torch::from_blob(const_cast<uint8_t*>(data), shape, torch::kUInt8);
  if (device_.is_cuda()) return host.pin_memory().to(device_);
  return host.clone();
}

void Trainer::set_data(const std::string& key, const uint8_t* images, const uint8_t* labels, int64_t n) {
  Dataset ds;
  ds.images = upload(images, {n, kChannels, kImageSize, kImageSize});
  if (labels) ds.labels = upload(labels, {n}).to(torch::kFloat);
  data_[key] = std::move(ds);
}

void Trainer::drop_data(const std::string& key) { data_.erase(key); }

torch::Tensor Trainer::to_input(const torch::Tensor& u8) const {
  auto x = u8.to(torch::kFloat).mul_(1.0 / 255.0);
  return channels_last_ ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
}

void Trainer::set_lr(double lr) {
  for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
}

double Trainer::lr() const { return optimizer_->param_groups().at(0).options().get_lr(); }

EpochResult Trainer::train_epoch(const EpochOptions& o, const std::function<void(const EpochProgress&)>& progress,
                                 const std::function<bool()>& cancelled) {
  auto it = data_.find(o.data);
  if (it == data_.end()) throw std::invalid_argument("train: no dataset named '" + o.data + "' was set");
  const auto& ds = it->second;
  if (!ds.labels.defined()) throw std::invalid_argument("train: dataset '" + o.data + "' has no labels");
  if (o.lr > 0) set_lr(o.lr);

  const auto t0 = Clock::now();
  const int64_t n = ds.images.size(0);
  const int64_t bs = o.batch_size;
  const int world = group_ ? group_->size() : 1;
  const int rank = group_ ? group_->rank() : 0;
  if (group_) group_->reset_comm_seconds();
  const uint64_t stream = mix_seed(o.seed, o.epoch);
  // The order is shared by all ranks; dropout and augmentation draw per rank.
  torch::manual_seed(rank == 0 ? stream : mix_seed(stream, 1000 + rank));
  torch::Tensor order;
  if (o.shuffle) {
    auto gen = at::detail::createCPUGenerator(stream);
    order = torch::randperm(n, gen, torch::TensorOptions(torch::kLong)).to(device_);
  } else {
    order = torch::arange(n, torch::TensorOptions(torch::kLong).device(device_));
  }

  model_->train();
  EpochResult r;
  r.batches = (n + bs - 1) / bs;
  auto loss_sum = torch::zeros({}, torch::TensorOptions(torch::kDouble).device(device_));
  auto correct = torch::zeros({}, torch::TensorOptions(torch::kLong).device(device_));
  auto last_report = t0;
  int64_t seen = 0, local_seen = 0, batch = 0;
  bool local_non_finite = false;
  for (int64_t start = 0; start < n; start += bs, ++batch) {
    const bool stop_here = cancelled();
    if (stop_here && !group_) {
      r.cancelled = true;
      break;
    }
    const int64_t end = std::min(n, start + bs);
    const int64_t len = end - start;
    // BN cannot train on one image: drop a last batch that leaves some rank a single one.
    if (spec_.batch_norm && len / world < 2 && seen > 0) break;
    // This rank's contiguous slice of the global batch; together the slices are the whole batch.
    const int64_t lo = start + len * rank / world, hi = start + len * (rank + 1) / world;
    zero_grad(*model_);
    torch::Tensor logits, y;
    if (hi > lo) {
      auto idx = order.slice(0, lo, hi);
      auto x = to_input(ds.images.index_select(0, idx));
      y = ds.labels.index_select(0, idx);
      auto target = o.label_smoothing > 0 ? y * (1.0 - o.label_smoothing) + 0.5 * o.label_smoothing : y;
      if (o.augment.hflip || o.augment.shift > 0) x = augment(x, o.augment);
      torch::Tensor loss;
      {
        AutocastScope autocast(amp_, device_);
        logits = model_->forward(x).to(torch::kFloat);
        // With ranks, each sums its slice and divides by the global count: the all-reduced sum is
        // then exactly the gradient of the global batch's mean loss, even for uneven slices.
        loss = group_ ? torch::binary_cross_entropy_with_logits(logits, target, {}, {}, at::Reduction::Sum) / double(len)
                      : torch::binary_cross_entropy_with_logits(logits, target);
      }
      loss_sum += loss.detach().to(torch::kDouble) * static_cast<double>(group_ ? len : hi - lo);
      if (amp_ == Amp::fp16) loss = loss * scaler_.scale;
      loss.backward();
      local_seen += hi - lo;
      correct += ((logits.detach() >= 0) == (y > 0.5)).sum();
    }
    bool stop_all = false;
    if (group_) {
      auto flags = sync_gradients({stop_here ? 1.0f : 0.0f, local_non_finite ? 1.0f : 0.0f});
      r.cancelled = flags[0] > 0;
      r.non_finite = flags[1] > 0;
      stop_all = r.cancelled || r.non_finite;
    }
    if (amp_ == Amp::fp16 ? unscale_and_check() : true) optimizer_->step();
    seen += len;
    if (stop_all) break;

    auto now = Clock::now();
    if (progress && std::chrono::duration<double>(now - last_report).count() >= o.progress_interval_s) {
      last_report = now;
      EpochProgress p;
      p.batch = batch + 1;
      p.batches = r.batches;
      p.images = seen;
      const int64_t counted = std::max<int64_t>(1, local_seen);
      p.loss = loss_sum.item<double>() / counted;
      p.accuracy = static_cast<double>(correct.item<int64_t>()) / counted;
      p.images_per_sec = seen / std::max(1e-9, seconds_since(t0));
      if (!std::isfinite(p.loss)) {
        if (!group_) {
          r.non_finite = true;
          break;
        }
        local_non_finite = true;  // told to every rank with the next step's gradients
      }
      progress(p);
    }
  }
  double totals[3] = {loss_sum.item<double>(), static_cast<double>(correct.item<int64_t>()), double(local_seen)};
  if (group_) {
    auto g = group_->allreduce_doubles({totals[0], totals[1], totals[2]});
    std::copy(g.begin(), g.end(), totals);
    r.comm_seconds = group_->comm_seconds();
  }
  r.images = static_cast<int64_t>(totals[2]);
  r.seconds = seconds_since(t0);
  r.loss = r.images ? totals[0] / r.images : 0.0;
  r.accuracy = r.images ? totals[1] / r.images : 0.0;
  r.images_per_sec = r.images / std::max(1e-9, r.seconds);
  r.skipped_steps = scaler_.skipped_steps;
  r.loss_scale = amp_ == Amp::fp16 ? scaler_.scale : 0.0;
  if (!std::isfinite(r.loss)) r.non_finite = true;
  return r;
}

bool Trainer::unscale_and_check() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, finite;
  for (auto& p : model_->parameters())
    if (p.grad().defined()) {
      grads.push_back(p.grad());
      finite.push_back(torch::isfinite(p.grad()).all());
    }
  // One read back to the host per step, not one per parameter.
  if (!finite.empty() && !torch::stack(finite).all().item<bool>()) {
    scaler_.scale *= 0.5;
    scaler_.good_steps = 0;
    ++scaler_.skipped_steps;
    return false;
  }
  for (auto& g : grads) g.mul_(1.0 / scaler_.scale);
  if (++scaler_.good_steps == 2000) {
    scaler_.scale *= 2.0;
    scaler_.good_steps = 0;
  }
  return true;
}

std::vector<float> Trainer::sync_gradients(const std::vector<float>& flags) {
  torch::NoGradGuard no_grad;
  if (grad_buckets_.empty()) {
    // Like DDP: parameters in reverse order (the order backward produces them), ~25 MB a bucket.
    constexpr int64_t kBucketBytes = 25 << 20;
    auto params = model_->parameters();
    int64_t bytes = 0;
    for (auto p = params.rbegin(); p != params.rend(); ++p) {
      const int64_t b = p->numel() * static_cast<int64_t>(p->element_size());
      if (grad_buckets_.empty() || (bytes > 0 && bytes + b > kBucketBytes)) {
        grad_buckets_.emplace_back();
        bytes = 0;
      }
      grad_buckets_.back().push_back(*p);
      bytes += b;
    }
  }
  // The last bucket also carries the BN running statistics, rank 0's values and zeros elsewhere, so
  // the sum is rank 0's statistics (DDP's broadcast_buffers) without another round trip; then the flags.
  std::vector<torch::Tensor> stats;
  for (auto& b : model_->buffers())
    if (b.is_floating_point()) stats.push_back(b);
  std::vector<torch::Tensor> flats;
  for (size_t b = 0; b < grad_buckets_.size(); ++b) {
    std::vector<torch::Tensor> parts;
    for (auto& p : grad_buckets_[b])
      parts.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
    if (b + 1 == grad_buckets_.size()) {
      for (auto& s : stats) parts.push_back(group_->rank() == 0 ? s.reshape({-1}) : torch::zeros({s.numel()}, s.options()));
      parts.push_back(torch::tensor(flags, torch::kFloat).to(device_));
    }
    flats.push_back(torch::cat(parts));
  }
  group_->allreduce_sum(flats);
  for (size_t b = 0; b < grad_buckets_.size(); ++b) {
    int64_t off = 0;
    for (auto& p : grad_buckets_[b]) {
      auto g = flats[b].slice(0, off, off + p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(g);
      else p.mutable_grad() = torch::empty_like(p).copy_(g);
      off += p.numel();
    }
    if (b + 1 == grad_buckets_.size())
      for (auto& s : stats) {
        s.copy_(flats[b].slice(0, off, off + s.numel()).view(s.sizes()));
        off += s.numel();
      }
  }
  auto tail = flats.back().slice(0, flats.back().numel() - static_cast<int64_t>(flags.size())).to(torch::kCPU);
  return std::vector<float>(tail.data_ptr<float>(), tail.data_ptr<float>() + tail.numel());
}

void Trainer::broadcast_state(int root) {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  for (auto& p : model_->parameters()) {
    auto c = p.detach().contiguous();
    group_->broadcast(c, root);
    p.copy_(c);
  }
  for (auto& b : model_->buffers()) {
    auto c = b.detach().contiguous();
    group_->broadcast(c, root);
    b.copy_(c);
  }
}

std::vector<float> Trainer::predict_tensor(const torch::Tensor& images, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  EvalModeScope eval_mode(*model_);
  const int64_t n = images.size(0);
  std::vector<torch::Tensor> parts;
  AutocastScope autocast(amp_, device_);
  for (int64_t start = 0; start < n; start += batch_size)
    parts.push_back(model_->forward(to_input(images.slice(0, start, std::min(n, start + batch_size)))));
  std::vector<float> out(n);
  if (n == 0) return out;
  auto all = torch::cat(parts).to(torch::kCPU, torch::kFloat).contiguous();
  std::memcpy(out.data(), all.data_ptr<float>(), n * sizeof(float));
  return out;
}

std::vector<float> Trainer::predict(const std::string& key, int64_t batch_size) {
  auto it = data_.find(key);
  if (it == data_.end()) throw std::invalid_argument("predict: no dataset named '" + key + "' was set");
  return predict_tensor(it->second.images, batch_size);
}

std::vector<float> Trainer::predict(const uint8_t* images, int64_t n, int64_t batch_size) {
  return predict_tensor(upload(images, {n, kChannels, kImageSize, kImageSize}), batch_size);
}

GradCamResult Trainer::gradcam(const uint8_t* images, int64_t n, const GradCamOptions& o) {
  GradCamResult r;
  r.n = n;
  r.layer = o.layer.empty() ? model_->default_cam_layer() : o.layer;
  r.layer_size = model_->layer_size(r.layer);
  r.out_size = o.out_size;
  if (r.layer_size < 0) {
    std::string names;
    for (const auto& l : model_->layer_names()) names += (names.empty() ? "" : ", ") + l;
    throw std::invalid_argument("layer: unknown layer '" + r.layer + "' (valid: " + names + ")");
  }
  if (n == 0) return r;

  // Eval mode: dropout off and BN on its running statistics, so images are explained independently
  // and the model's state is left untouched.
  torch::Tensor acts, grads, logits, targets;
  {
    EvalModeScope eval_mode(*model_);
    auto x = to_input(upload(images, {n, kChannels, kImageSize, kImageSize}));
    logits = model_->forward(x, r.layer, &acts);
    targets = o.target < 0 ? (logits.detach() >= 0).to(torch::kLong)
                           : torch::full({n}, o.target, torch::TensorOptions(torch::kLong).device(device_));
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
  auto to_vec = [](const torch::Tensor& t) {
    auto c = t.to(torch::kCPU, torch::kFloat).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  };
  r.raw = to_vec(cam);
  r.upsampled = to_vec(up);
  r.raw_max = to_vec(std::get<0>(cam.flatten(1).max(1)));
  r.logits = to_vec(logits.detach());
  auto t = targets.to(torch::kCPU, torch::kInt).contiguous();
  r.targets.assign(t.data_ptr<int32_t>(), t.data_ptr<int32_t>() + n);
  return r;
}

void Trainer::snapshot() {
  torch::NoGradGuard no_grad;
  snapshot_.clear();
  for (const auto& p : model_->parameters()) snapshot_.push_back(p.detach().clone());
  for (const auto& b : model_->buffers()) snapshot_.push_back(b.detach().clone());
}

void Trainer::restore() {
  if (snapshot_.empty()) throw std::logic_error("restore: no snapshot was taken");
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& p : model_->parameters()) p.copy_(snapshot_[i++]);
  for (auto& b : model_->buffers()) b.copy_(snapshot_[i++]);
}

std::vector<std::pair<std::string, torch::Tensor>> Trainer::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model_->named_parameters()) out.emplace_back(p.key(), p.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
  for (const auto& b : model_->named_buffers()) out.emplace_back(b.key(), b.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
  return out;
}

// ---- checkpoints ----
// One file, a libtorch archive: cifake_format, cifake_meta (JSON from TS), model, optimizer.

constexpr int64_t kCheckpointFormat = 1;

void Trainer::save(const std::string& path, const std::string& meta) const {
  torch::serialize::OutputArchive archive, model_archive, optim_archive;
  archive.write("cifake_format", c10::IValue(kCheckpointFormat));
  archive.write("cifake_meta", c10::IValue(meta));
  model_->save(model_archive);
  archive.write("model", model_archive);
  optimizer_->save(optim_archive);
  archive.write("optimizer", optim_archive);
  // Never leave a half-written checkpoint at `path`: write beside it, then rename over it.
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    archive.save_to(tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("save: cannot rename " + tmp + " to " + path);
  }
}

namespace {

void open_checkpoint(const std::string& path, const torch::Device& device, torch::serialize::InputArchive& archive,
                     std::string& meta) {
  try {
    archive.load_from(path, device);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a readable cifake-torch checkpoint (truncated, corrupt or another format): " +
                             e.what_without_backtrace());
  }
  c10::IValue format, m;
  if (!archive.try_read("cifake_format", format) || !format.isInt() || !archive.try_read("cifake_meta", m) ||
      !m.isString())
    throw std::runtime_error(path + ": a libtorch archive, but not a cifake-torch checkpoint");
  if (format.toInt() > kCheckpointFormat)
    throw std::runtime_error(path + ": checkpoint format " + std::to_string(format.toInt()) +
                             " is newer than this cifake-torch supports (" + std::to_string(kCheckpointFormat) + ")");
  meta = m.toStringRef();
}

// Module::save nests one archive per submodule: "block1.conv.weight" lives in block1 / conv.
bool read_nested(torch::serialize::InputArchive& archive, const std::string& name, torch::Tensor& t, bool is_buffer) {
  const auto dot = name.find('.');
  if (dot == std::string::npos) return archive.try_read(name, t, is_buffer);
  torch::serialize::InputArchive child;
  if (!archive.try_read(name.substr(0, dot), child)) return false;
  return read_nested(child, name.substr(dot + 1), t, is_buffer);
}

}  // namespace

std::string read_checkpoint_meta(const std::string& path) {
  torch::serialize::InputArchive archive;
  std::string meta;
  open_checkpoint(path, torch::Device("cpu"), archive, meta);
  return meta;
}

std::string Trainer::load(const std::string& path, bool with_optimizer) {
  torch::serialize::InputArchive archive, model_archive;
  std::string meta;
  open_checkpoint(path, device_, archive, meta);
  if (!archive.try_read("model", model_archive)) throw std::runtime_error(path + ": checkpoint has no model weights");
  // Read every tensor and check its shape before touching the model, so a mismatching checkpoint
  // leaves the model as it was.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> pending;
  auto collect = [&](const std::string& name, torch::Tensor& target, bool is_buffer) {
    torch::Tensor t;
    if (!read_nested(model_archive, name, t, is_buffer))
      throw std::runtime_error(path + ": checkpoint lacks '" + name + "' (a different architecture?)");
    if (t.sizes() != target.sizes())
      throw std::runtime_error(path + ": '" + name + "' has shape " + c10::str(t.sizes()) + ", the model expects " +
                               c10::str(target.sizes()) + " (a different architecture?)");
    pending.emplace_back(target, t);
  };
  for (auto& p : model_->named_parameters()) collect(p.key(), p.value(), false);
  for (auto& b : model_->named_buffers()) collect(b.key(), b.value(), true);
  {
    torch::NoGradGuard no_grad;
    for (auto& [target, t] : pending) target.copy_(t);
  }
  if (with_optimizer) {
    torch::serialize::InputArchive optim_archive;
    if (archive.try_read("optimizer", optim_archive)) {
      try {
        optimizer_->load(optim_archive);
      } catch (const c10::Error& e) {
        throw std::runtime_error(path + ": optimizer state does not match this optimizer: " + e.what_without_backtrace());
      }
    }
  }
  return meta;
}

// ---- gradient check ----

GradCheckResult gradient_check(const ModelSpec& spec, uint64_t seed) {
  torch::manual_seed(seed);
  CifakeNet net(spec);
  net->to(torch::kDouble);
  net->train();
  auto x = torch::rand({2, kChannels, kImageSize, kImageSize}, torch::kDouble).requires_grad_(true);
  auto y = torch::tensor({0.0, 1.0}, torch::kDouble);
  // Reseeding before every forward fixes the dropout mask, so the loss is a deterministic function.
  auto loss_fn = [&]() {
    torch::manual_seed(seed + 1);
    return torch::binary_cross_entropy_with_logits(net->forward(x), y);
  };
  std::vector<torch::Tensor> inputs = net->parameters();
  inputs.push_back(x);
  auto grads = torch::autograd::grad({loss_fn()}, inputs);

  GradCheckResult r;
  std::mt19937_64 rng(seed);
  const double eps = 1e-6;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto flat = inputs[i].view({-1});
    auto g = grads[i].reshape({-1});
    for (int k = 0; k < 4; ++k) {
      const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(flat.numel()));
      const double orig = flat[j].item<double>();
      flat[j] = orig + eps;
      const double up = loss_fn().item<double>();
      flat[j] = orig - eps;
      const double down = loss_fn().item<double>();
      flat[j] = orig;
      const double numeric = (up - down) / (2 * eps);
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
