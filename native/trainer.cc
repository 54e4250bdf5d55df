#include "trainer.h"

#include "checkpoint.h"
#include "random.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace cifake {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void zero_grad(torch::nn::Module& m) {
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& c, std::vector<torch::Tensor> params) {
  if (c.name == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(c.lr).betas({c.beta1, c.beta2}).weight_decay(c.weight_decay));
  if (c.name == "adam")
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(c.lr).betas({c.beta1, c.beta2}).weight_decay(c.weight_decay));
  throw std::invalid_argument("optimizer.name: unknown optimizer '" + c.name + "' (allowed: adam, adamw)");
}

}  // namespace

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
      gen_(make_generator(device_, seed)),
      optimizer_config_(optimizer) {
  seeded_init(seed, [&] { model_ = CifakeNet(spec); });  // the weight initialisation
  model_->set_generator(gen_);
  model_->to(device_);
  if (channels_last_) {
    torch::NoGradGuard no_grad;
    for (auto& p : model_->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
  optimizer_ = make_optimizer(optimizer, model_->parameters());
}

torch::Tensor Trainer::upload(const torch::Tensor& host) const {
  if (device_.is_cuda()) return host.pin_memory().to(device_);
  return host;  // already a private copy (convert.h: copy_to_tensor)
}

void Trainer::set_data(const std::string& key, const torch::Tensor& images, const torch::Tensor& labels) {
  Dataset ds;
  ds.images = upload(images);
  if (labels.defined()) ds.labels = upload(labels).to(torch::kFloat);
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

// ---- the epoch: begin, then per batch forward_backward, exchange_and_step, report; finish ----

struct Trainer::Epoch {
  Clock::time_point t0, last_report;
  int64_t n = 0;
  int world = 1, rank = 0;
  torch::Tensor order, loss_sum, correct;
  int64_t seen = 0, local_seen = 0, batch = 0;
  bool local_non_finite = false;
  EpochResult r;
};

const Trainer::Dataset& Trainer::labelled(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) throw std::invalid_argument("train: no dataset named '" + key + "' was set");
  if (!it->second.labels.defined()) throw std::invalid_argument("train: dataset '" + key + "' has no labels");
  return it->second;
}

void Trainer::begin_epoch(Epoch& e, const EpochOptions& o, const Dataset& ds) {
  e.t0 = e.last_report = Clock::now();
  e.n = ds.images.size(0);
  e.world = group_ ? group_->size() : 1;
  e.rank = group_ ? group_->rank() : 0;
  if (group_) group_->reset_comm_seconds();
  const uint64_t stream = mix_seed(o.seed, o.epoch);
  // The order is shared by all ranks; dropout and augmentation draw per rank.
  gen_.set_current_seed(e.rank == 0 ? stream : mix_seed(stream, 1000 + e.rank));
  if (o.shuffle) {
    auto order_gen = at::detail::createCPUGenerator(stream);
    e.order = torch::randperm(e.n, order_gen, torch::TensorOptions(torch::kLong)).to(device_);
  } else {
    e.order = torch::arange(e.n, torch::TensorOptions(torch::kLong).device(device_));
  }
  model_->train();
  e.r.batches = (e.n + o.batch_size - 1) / o.batch_size;
  e.loss_sum = torch::zeros({}, torch::TensorOptions(torch::kDouble).device(device_));
  e.correct = torch::zeros({}, torch::TensorOptions(torch::kLong).device(device_));
}

// This rank's slice [lo, hi) of a global batch of `len` images.
void Trainer::forward_backward(Epoch& e, const EpochOptions& o, const Dataset& ds, int64_t lo, int64_t hi,
                               int64_t len) {
  auto idx = e.order.slice(0, lo, hi);
  auto x = to_input(ds.images.index_select(0, idx));
  auto y = ds.labels.index_select(0, idx);
  auto target = o.label_smoothing > 0 ? y * (1.0 - o.label_smoothing) + 0.5 * o.label_smoothing : y;
  if (o.augment.any()) x = augment(x, o.augment, gen_);
  cutmix(x, target, o.augment.cutmix, gen_);
  torch::Tensor logits, loss;
  // An ensemble's members each learn from their own loss (as if trained alone, on the same
  // batches); the reported loss is their mean.
  const auto members = model_->members();
  {
    AutocastScope autocast(amp_, device_);
    torch::Tensor member_logits;
    if (members > 1) {
      member_logits = model_->forward_members(x).to(torch::kFloat);
      logits = member_logits.detach().mean(1);
      target = target.unsqueeze(1).expand_as(member_logits);
    } else {
      logits = member_logits = model_->forward(x).to(torch::kFloat);
    }
    // With ranks, each sums its slice and divides by the global count: the all-reduced sum is
    // then exactly the gradient of the global batch's mean loss, even for uneven slices.
    loss = group_ ? torch::binary_cross_entropy_with_logits(member_logits, target, {}, {}, at::Reduction::Sum) / double(len * members)
                  : torch::binary_cross_entropy_with_logits(member_logits, target);
  }
  e.loss_sum += loss.detach().to(torch::kDouble) * static_cast<double>(group_ ? len : hi - lo);
  if (members > 1) loss = loss * static_cast<double>(members);
  if (amp_ == Amp::fp16) loss = loss * scaler_.scale;
  loss.backward();
  e.local_seen += hi - lo;
  e.correct += ((logits.detach() >= 0) == (y > 0.5)).sum();
}

// All-reduces the gradients (with the stop flags) across ranks, then steps; true: stop every rank.
bool Trainer::exchange_and_step(Epoch& e, bool stop_here) {
  bool stop_all = false;
  if (group_) {
    auto flags = buckets_.sync(*model_, *group_, {stop_here ? 1.0f : 0.0f, e.local_non_finite ? 1.0f : 0.0f}, device_);
    e.r.cancelled = flags[0] > 0;
    e.r.non_finite = flags[1] > 0;
    stop_all = e.r.cancelled || e.r.non_finite;
  }
  if (amp_ != Amp::fp16 || scaler_.unscale_and_check(*model_)) optimizer_->step();
  return stop_all;
}

// Reports progress at most every progress_interval_s; true: the loss is not finite (stop alone).
bool Trainer::report(Epoch& e, const EpochOptions& o, const std::function<void(const EpochProgress&)>& progress) {
  auto now = Clock::now();
  if (!progress || std::chrono::duration<double>(now - e.last_report).count() < o.progress_interval_s) return false;
  e.last_report = now;
  EpochProgress p;
  p.batch = e.batch + 1;
  p.batches = e.r.batches;
  p.images = e.seen;
  const int64_t counted = std::max<int64_t>(1, e.local_seen);
  p.loss = e.loss_sum.item<double>() / counted;
  p.accuracy = static_cast<double>(e.correct.item<int64_t>()) / counted;
  p.images_per_sec = e.seen / std::max(1e-9, seconds_since(e.t0));
  bool stop = false;
  if (!std::isfinite(p.loss)) {
    if (!group_) {
      e.r.non_finite = true;
      stop = true;
    } else {
      e.local_non_finite = true;  // told to every rank with the next step's gradients
    }
  }
  if (!stop) progress(p);
  return stop;
}

EpochResult Trainer::finish_epoch(Epoch& e) {
  auto& r = e.r;
  double totals[3] = {e.loss_sum.item<double>(), static_cast<double>(e.correct.item<int64_t>()), double(e.local_seen)};
  if (group_) {
    auto g = group_->allreduce_doubles({totals[0], totals[1], totals[2]});
    std::copy(g.begin(), g.end(), totals);
    r.comm_seconds = group_->comm_seconds();
  }
  r.images = static_cast<int64_t>(totals[2]);
  r.seconds = seconds_since(e.t0);
  r.loss = r.images ? totals[0] / r.images : 0.0;
  r.accuracy = r.images ? totals[1] / r.images : 0.0;
  r.images_per_sec = r.images / std::max(1e-9, r.seconds);
  r.skipped_steps = scaler_.skipped_steps;
  r.loss_scale = amp_ == Amp::fp16 ? scaler_.scale : 0.0;
  if (!std::isfinite(r.loss)) r.non_finite = true;
  return r;
}

EpochResult Trainer::train_epoch(const EpochOptions& o, const std::function<void(const EpochProgress&)>& progress,
                                 const std::function<bool()>& cancelled) {
  const auto& ds = labelled(o.data);
  if (ema_.swapped()) throw std::logic_error("train: the model holds its weight average; swap it back (swapEma) before training");
  if (o.lr > 0) set_lr(o.lr);
  if (o.ema_decay > 0) ema_.start(*model_);  // the average starts at the weights before the first step
  Epoch e;
  begin_epoch(e, o, ds);
  const int64_t bs = o.batch_size;
  for (int64_t start = 0; start < e.n; start += bs, ++e.batch) {
    const bool stop_here = cancelled();
    if (stop_here && !group_) {
      e.r.cancelled = true;
      break;
    }
    const int64_t len = std::min(e.n, start + bs) - start;
    // BN cannot train on one image: drop a last batch that leaves some rank a single one.
    if (spec_.batch_norm && len / e.world < 2 && e.seen > 0) break;
    // This rank's contiguous slice of the global batch; together the slices are the whole batch.
    const int64_t lo = start + len * e.rank / e.world, hi = start + len * (e.rank + 1) / e.world;
    zero_grad(*model_);
    if (hi > lo) forward_backward(e, o, ds, lo, hi, len);
    const bool stop_all = exchange_and_step(e, stop_here);
    if (o.ema_decay > 0) ema_.update(*model_, o.ema_decay);
    e.seen += len;
    if (stop_all || report(e, o, progress)) break;
  }
  return finish_epoch(e);
}

void Trainer::broadcast_state(int root) {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  for (auto& w : weight_tensors(*model_)) {
    auto c = w.contiguous();
    group_->broadcast(c, root);
    w.copy_(c);
  }
}

// ---- inference, snapshots, checkpoints ----

// Past a few dozen 32x32 images a chunk's activations no longer fit the CPU caches: 1024-image
// chunks ran at half the speed of 32-256-image ones for every family here, so CPU inference goes
// in chunks of at most this many images whatever batch the caller hands over.
constexpr int64_t kCpuPredictChunk = 64;

std::vector<float> Trainer::predict_tensor(const torch::Tensor& images, int64_t batch_size) {
  c10::InferenceMode inference;  // no autograd graph, version counters or view tracking
  EvalModeScope eval_mode(*model_);
  const int64_t n = images.size(0);
  const int64_t chunk = device_.is_cpu() ? std::min(batch_size, kCpuPredictChunk) : batch_size;
  std::vector<torch::Tensor> parts;
  AutocastScope autocast(amp_, device_);
  const auto folded = model_->fold_batch_norm();  // BN folded into the convs once per call
  for (int64_t start = 0; start < n; start += chunk)
    parts.push_back(model_->forward_folded(to_input(images.slice(0, start, std::min(n, start + chunk))), folded));
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

std::vector<float> Trainer::predict(const torch::Tensor& images, int64_t batch_size) {
  return predict_tensor(upload(images), batch_size);
}

GradCamResult Trainer::gradcam(const torch::Tensor& images, const GradCamOptions& opts) {
  return grad_cam(*model_, to_input(upload(images)), opts);
}

void Trainer::snapshot() {
  torch::NoGradGuard no_grad;
  snapshot_.clear();
  for (const auto& w : weight_tensors(*model_)) snapshot_.push_back(w.clone());
}

void Trainer::restore() {
  if (snapshot_.empty()) throw std::logic_error("restore: no snapshot was taken");
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& w : weight_tensors(*model_)) w.copy_(snapshot_[i++]);
}

std::vector<std::pair<std::string, torch::Tensor>> Trainer::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model_->named_parameters()) out.emplace_back(p.key(), p.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
  for (const auto& b : model_->named_buffers()) out.emplace_back(b.key(), b.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
  return out;
}

void Trainer::set_state(const std::vector<std::pair<std::string, std::vector<float>>>& values) {
  std::map<std::string, const std::vector<float>*> by_name;
  for (const auto& [name, v] : values) by_name[name] = &v;
  std::vector<std::pair<torch::Tensor, const std::vector<float>*>> plan;
  auto want = [&](const std::string& name, const torch::Tensor& t) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw std::invalid_argument("setState: missing tensor '" + name + "'");
    if (static_cast<int64_t>(it->second->size()) != t.numel())
      throw std::invalid_argument("setState: '" + name + "' has " + std::to_string(it->second->size()) + " values, the model's has " +
                                  std::to_string(t.numel()));
    plan.emplace_back(t, it->second);
    by_name.erase(it);
  };
  for (const auto& p : model_->named_parameters()) want(p.key(), p.value());
  for (const auto& b : model_->named_buffers()) want(b.key(), b.value());
  if (!by_name.empty()) throw std::invalid_argument("setState: unknown tensor '" + by_name.begin()->first + "'");
  torch::NoGradGuard no_grad;
  for (auto& [t, v] : plan) {
    auto src = torch::from_blob(const_cast<float*>(v->data()), t.sizes(), torch::kFloat).to(t.scalar_type());
    t.copy_(src);  // copy_ keeps the destination's device and memory format (channels-last)
  }
}

bool Trainer::swap_ema() {
  ema_.swap(*model_);
  return ema_.swapped();
}

void Trainer::save(const std::string& path, const std::string& meta) const {
  save_checkpoint(path, meta, *model_, *optimizer_, ema_.swapped() ? nullptr : &ema_);
}

std::string Trainer::load(const std::string& path, bool with_optimizer) {
  OpenCheckpoint ckpt;
  open_checkpoint(path, device_, ckpt);
  if (with_optimizer) {
    load_weights(path, ckpt, *model_, optimizer_.get(), &ema_);
  } else {
    load_weights(path, ckpt, *model_, nullptr);
    ema_ = WeightAverage();
  }
  return ckpt.meta;
}

}  // namespace cifake
