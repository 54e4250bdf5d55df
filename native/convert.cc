#include "convert.h"

#include <cmath>
#include <cstring>

namespace cifake {

namespace {

Napi::Object as_object(const Napi::Value& v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(v.Env());
  if (!v.IsObject() || v.IsArray() || v.IsFunction())
    throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an object");
  return v.As<Napi::Object>();
}

std::vector<int64_t> get_int_list(const Napi::Object& o, const char* key, int64_t min, int64_t max) {
  auto v = o.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("model.") + key + ": expected an array of integers");
  auto a = v.As<Napi::Array>();
  if (a.Length() > 64) throw Napi::TypeError::New(o.Env(), std::string("model.") + key + ": too many entries");
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    auto e = a.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d != std::floor(d) || d < double(min) || d > double(max))
      throw Napi::TypeError::New(o.Env(), std::string("model.") + key + "[" + std::to_string(i) +
                                              "]: expected an integer in " + std::to_string(min) + ".." +
                                              std::to_string(max));
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

// A flag every spec must carry (TypeScript's modelSpecOf fills them all in).
bool required_bool(const Napi::Object& o, const char* key) {
  auto v = o.Get(key);
  if (!v.IsBoolean())
    throw Napi::TypeError::New(o.Env(), std::string("model.") + key + ": expected a boolean (the spec must carry every flag)");
  return v.As<Napi::Boolean>().Value();
}

}  // namespace

std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  auto v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}

double get_number(const Napi::Object& o, const char* key, double fallback) {
  auto v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throw Napi::TypeError::New(o.Env(), std::string(key) + ": expected a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t get_int(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  auto v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(min) || d > static_cast<double>(max))
    throw Napi::TypeError::New(o.Env(), std::string(key) + ": expected an integer in " + std::to_string(min) + ".." +
                                            std::to_string(max));
  return static_cast<int64_t>(d);
}

bool get_bool(const Napi::Object& o, const char* key, bool fallback) {
  auto v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

int64_t arg_int(const Napi::Value& v, const char* what, int64_t fallback, int64_t min, int64_t max) {
  auto o = Napi::Object::New(v.Env());
  o.Set(what, v);
  return get_int(o, what, fallback, min, max);
}

Napi::Object options_arg(const Napi::Value& v, const char* what) { return as_object(v, what); }

std::string string_arg(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// The spec's flags decide the architecture; `family` is only a label (kept for old checkpoints'
// meta and describe()). Ranges beyond what keeps tensors valid are TypeScript's (src/config.ts).
ModelSpec to_model_spec(const Napi::Value& v) {
  if (!v.IsObject() || v.IsArray()) throw Napi::TypeError::New(v.Env(), "model: expected a model spec object");
  auto o = v.As<Napi::Object>();
  ModelSpec s;
  s.family = get_string(o, "family", "");
  if (s.family.size() > 64) throw Napi::TypeError::New(o.Env(), "model.family: a label of at most 64 characters");
  s.conv_filters = get_int_list(o, "convFilters", 1, 4096);
  s.dense = get_int_list(o, "dense", 1, 1 << 16);
  auto dropout = o.Get("dropout");
  if (!dropout.IsNumber()) throw Napi::TypeError::New(o.Env(), "model.dropout: expected a number");
  s.dropout = dropout.As<Napi::Number>().DoubleValue();
  auto padding = o.Get("padding");
  auto p = padding.IsString() ? padding.As<Napi::String>().Utf8Value() : std::string();
  if (p != "same" && p != "valid") throw Napi::TypeError::New(o.Env(), "model.padding: expected 'same' or 'valid'");
  s.same_padding = p == "same";
  s.batch_norm = required_bool(o, "batchNorm");
  s.hoc = required_bool(o, "hoc");
  s.fused_hoc = required_bool(o, "fusedHoc");
  s.convs_per_block = get_int(o, "convsPerBlock", 1, 1, 16);
  s.residual = get_bool(o, "residual", false);
  s.members = get_int(o, "members", 1, 1, 16);
  try {
    validate_spec(s);
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(o.Env(), e.what());
  }
  return s;
}

OptimizerConfig to_optimizer(const Napi::Value& v) {
  auto o = as_object(v, "optimizer");
  OptimizerConfig c;
  c.name = get_string(o, "name", c.name);
  c.lr = get_number(o, "lr", c.lr);
  c.weight_decay = get_number(o, "weightDecay", c.weight_decay);
  auto betas = o.Get("betas");
  if (!betas.IsUndefined()) {
    auto a = betas.IsArray() ? betas.As<Napi::Array>() : Napi::Array();
    if (a.IsEmpty() || a.Length() != 2 || !a.Get(0u).IsNumber() || !a.Get(1u).IsNumber())
      throw Napi::TypeError::New(o.Env(), "optimizer.betas: expected [beta1, beta2]");
    c.beta1 = a.Get(0u).As<Napi::Number>().DoubleValue();
    c.beta2 = a.Get(1u).As<Napi::Number>().DoubleValue();
    if (!std::isfinite(c.beta1) || !std::isfinite(c.beta2))
      throw Napi::TypeError::New(o.Env(), "optimizer.betas: expected finite numbers");
  }
  if (!(c.lr > 0)) throw Napi::TypeError::New(o.Env(), "optimizer.lr: must be > 0");
  return c;
}

EpochOptions to_epoch_options(const Napi::Value& v) {
  auto o = as_object(v, "train options");
  EpochOptions e;
  e.data = get_string(o, "data", "train");
  e.batch_size = get_int(o, "batchSize", e.batch_size, 1, 1 << 20);
  e.seed = static_cast<uint64_t>(get_int(o, "seed", 42, 0, (int64_t(1) << 53)));
  e.epoch = get_int(o, "epoch", 0, 0, 1 << 30);
  e.shuffle = get_bool(o, "shuffle", true);
  e.lr = get_number(o, "lr", -1);
  if (!o.Get("lr").IsUndefined() && !o.Get("lr").IsNull() && !(e.lr > 0))
    throw Napi::TypeError::New(o.Env(), "lr: must be > 0, got " + std::to_string(e.lr));
  e.progress_interval_s = get_number(o, "progressIntervalMs", 200) / 1000.0;
  auto a = o.Get("augment");
  if (!a.IsUndefined() && !a.IsNull()) {
    auto ao = as_object(a, "augment");
    e.augment.hflip = get_bool(ao, "hflip", false);
    e.augment.shift = get_int(ao, "shift", 0, 0, 16);
    e.augment.cutmix = get_number(ao, "cutmix", 0);
    if (!(e.augment.cutmix >= 0 && e.augment.cutmix <= 1))
      throw Napi::RangeError::New(o.Env(), "augment.cutmix: must be in [0, 1], got " + std::to_string(e.augment.cutmix));
  }
  e.label_smoothing = get_number(o, "labelSmoothing", 0);
  e.ema_decay = get_number(o, "emaDecay", 0);
  if (!(e.ema_decay >= 0 && e.ema_decay < 1))
    throw Napi::RangeError::New(o.Env(), "emaDecay: must be in [0, 1), got " + std::to_string(e.ema_decay));
  return e;
}

GradCamOptions to_gradcam_options(const Napi::Value& v) {
  auto o = as_object(v, "gradcam options");
  GradCamOptions g;
  g.layer = get_string(o, "layer", "");
  auto target = get_string(o, "target", "pred");
  if (target == "pred") g.target = -1;
  else if (target == "fake") g.target = 0;
  else if (target == "real") g.target = 1;
  else throw Napi::TypeError::New(o.Env(), "target: expected 'pred', 'real' or 'fake', got '" + target + "'");
  auto method = get_string(o, "method", "gradcam");
  if (method != "gradcam" && method != "hirescam")
    throw Napi::TypeError::New(o.Env(), "method: expected 'gradcam' or 'hirescam', got '" + method + "'");
  g.hires = method == "hirescam";
  g.out_size = get_int(o, "size", kImageSize, 1, 4096);
  g.tensors = get_bool(o, "tensors", false);
  return g;
}

Napi::Uint8Array get_bytes(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a Uint8Array or Buffer");
  return v.As<Napi::Uint8Array>();
}

int64_t check_images(const Napi::Uint8Array& images, const Napi::Uint8Array* labels) {
  const size_t per_image = kChannels * kImageSize * kImageSize;
  if (images.ByteLength() % per_image != 0)
    throw Napi::RangeError::New(images.Env(), "images: byte length " + std::to_string(images.ByteLength()) +
                                                  " is not a multiple of 3*32*32 = 3072 (N x 3 x 32 x 32 uint8 expected)");
  const int64_t n = static_cast<int64_t>(images.ByteLength() / per_image);
  if (labels) {
    if (static_cast<int64_t>(labels->ByteLength()) != n)
      throw Napi::RangeError::New(images.Env(), "labels: " + std::to_string(labels->ByteLength()) + " labels for " +
                                                    std::to_string(n) + " images");
    const uint8_t* l = labels->Data();
    for (int64_t i = 0; i < n; ++i)
      if (l[i] > 1)
        throw Napi::RangeError::New(images.Env(), "labels[" + std::to_string(i) + "]: " + std::to_string(l[i]) +
                                                      " is not a class (0 = FAKE, 1 = REAL)");
  }
  return n;
}

torch::Tensor copy_to_tensor(const Napi::Uint8Array& bytes, at::IntArrayRef shape) {
  auto t = torch::empty(shape, torch::kUInt8);
  if (static_cast<size_t>(t.numel()) != bytes.ByteLength())
    throw Napi::RangeError::New(bytes.Env(), "internal: byte length does not match the tensor shape");
  if (t.numel() > 0) std::memcpy(t.data_ptr<uint8_t>(), bytes.Data(), bytes.ByteLength());
  return t;
}

Napi::Float32Array to_float32_array(Napi::Env env, const std::vector<float>& v) {
  auto a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

Napi::Float64Array to_float64_array(Napi::Env env, const std::vector<double>& v) {
  auto a = Napi::Float64Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(double));
  return a;
}

Napi::Uint8Array to_uint8_array(Napi::Env env, const std::vector<uint8_t>& v) {
  auto a = Napi::Uint8Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size());
  return a;
}

Napi::Object progress_to_js(Napi::Env env, const EpochProgress& p) {
  auto o = Napi::Object::New(env);
  o.Set("batch", Napi::Number::New(env, double(p.batch)));
  o.Set("batches", Napi::Number::New(env, double(p.batches)));
  o.Set("images", Napi::Number::New(env, double(p.images)));
  o.Set("loss", Napi::Number::New(env, p.loss));
  o.Set("accuracy", Napi::Number::New(env, p.accuracy));
  o.Set("imagesPerSec", Napi::Number::New(env, p.images_per_sec));
  return o;
}

Napi::Object epoch_result_to_js(Napi::Env env, const EpochResult& r) {
  auto o = Napi::Object::New(env);
  o.Set("loss", Napi::Number::New(env, r.loss));
  o.Set("accuracy", Napi::Number::New(env, r.accuracy));
  o.Set("images", Napi::Number::New(env, double(r.images)));
  o.Set("batches", Napi::Number::New(env, double(r.batches)));
  o.Set("seconds", Napi::Number::New(env, r.seconds));
  o.Set("imagesPerSec", Napi::Number::New(env, r.images_per_sec));
  o.Set("cancelled", Napi::Boolean::New(env, r.cancelled));
  o.Set("nonFinite", Napi::Boolean::New(env, r.non_finite));
  o.Set("commSeconds", Napi::Number::New(env, r.comm_seconds));
  o.Set("skippedSteps", Napi::Number::New(env, double(r.skipped_steps)));
  o.Set("lossScale", Napi::Number::New(env, r.loss_scale));
  return o;
}

Napi::Object gradcam_result_to_js(Napi::Env env, const GradCamResult& r) {
  auto o = Napi::Object::New(env);
  o.Set("n", Napi::Number::New(env, double(r.n)));
  o.Set("layer", Napi::String::New(env, r.layer));
  o.Set("layerSize", Napi::Number::New(env, double(r.layer_size)));
  o.Set("size", Napi::Number::New(env, double(r.out_size)));
  o.Set("raw", to_float32_array(env, r.raw));
  o.Set("maps", to_float32_array(env, r.upsampled));
  o.Set("rawMax", to_float32_array(env, r.raw_max));
  o.Set("logits", to_float32_array(env, r.logits));
  auto targets = Napi::Int32Array::New(env, r.targets.size());
  std::copy(r.targets.begin(), r.targets.end(), targets.Data());
  o.Set("targets", targets);
  if (!r.activations.empty()) {
    o.Set("channels", Napi::Number::New(env, double(r.channels)));
    o.Set("activations", to_float32_array(env, r.activations));
    o.Set("gradients", to_float32_array(env, r.gradients));
  }
  return o;
}

Napi::Object gradcheck_result_to_js(Napi::Env env, const GradCheckResult& r) {
  auto out = Napi::Object::New(env);
  out.Set("maxAbsError", Napi::Number::New(env, r.max_abs_error));
  out.Set("maxRelError", Napi::Number::New(env, r.max_rel_error));
  out.Set("checked", Napi::Number::New(env, double(r.checked)));
  return out;
}

std::vector<std::pair<std::string, std::vector<float>>> state_from_js(const Napi::Value& v) {
  auto o = as_object(v, "state");
  std::vector<std::pair<std::string, std::vector<float>>> out;
  auto names = o.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    auto name = names.Get(i).ToString().Utf8Value();
    auto value = o.Get(name);
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(o.Env(), "state." + name + ": expected a Float32Array");
    auto a = value.As<Napi::Float32Array>();
    out.emplace_back(name, std::vector<float>(a.Data(), a.Data() + a.ElementLength()));
  }
  return out;
}

Napi::Object state_to_js(Napi::Env env, const std::vector<std::pair<std::string, torch::Tensor>>& state) {
  auto o = Napi::Object::New(env);
  for (auto& [name, tensor] : state) {
    auto a = Napi::Float32Array::New(env, tensor.numel());
    std::memcpy(a.Data(), tensor.data_ptr<float>(), tensor.numel() * sizeof(float));
    o.Set(name, a);
  }
  return o;
}

Napi::Object describe_to_js(Napi::Env env, CifakeNetImpl& m, const torch::Device& device) {
  auto o = Napi::Object::New(env);
  o.Set("family", Napi::String::New(env, m.spec().family));
  o.Set("parameters", Napi::Number::New(env, double(m.parameter_count())));
  o.Set("members", Napi::Number::New(env, double(m.members())));
  auto layers = Napi::Array::New(env);
  auto sizes = Napi::Object::New(env);
  uint32_t i = 0;
  for (const auto& l : m.layer_names()) {
    layers.Set(i++, Napi::String::New(env, l));
    sizes.Set(l, Napi::Number::New(env, double(m.layer_size(l))));
  }
  o.Set("layers", layers);
  o.Set("layerSizes", sizes);
  o.Set("defaultLayer", Napi::String::New(env, m.default_cam_layer()));
  o.Set("device", Napi::String::New(env, device.str()));
  return o;
}

}  // namespace cifake
