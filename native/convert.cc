#include "convert.h"

#include <cmath>

namespace cifake {

namespace {

Napi::Object as_object(const Napi::Value& v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(v.Env());
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an object");
  return v.As<Napi::Object>();
}

std::vector<int64_t> get_int_list(const Napi::Object& o, const char* key, const std::vector<int64_t>& fallback) {
  auto v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("model.") + key + ": expected an array of integers");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    auto e = a.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d != std::floor(d))
      throw Napi::TypeError::New(o.Env(), std::string("model.") + key + "[" + std::to_string(i) + "]: expected an integer");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
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

ModelSpec to_model_spec(const Napi::Value& v) {
  auto o = as_object(v, "model");
  ModelSpec s;
  s.family = get_string(o, "family", "lightweight");
  if (s.family == "original") {
    s.conv_filters = {32, 32};
    s.dense = {64};
    s.dropout = 0;
    s.same_padding = false;
    s.batch_norm = false;
  } else if (s.family == "lightweight" || s.family == "hoc") {
    s.hoc = s.family == "hoc";
  } else {
    throw Napi::TypeError::New(o.Env(), "model.family: unknown family '" + s.family +
                                            "' (allowed: original, lightweight, hoc)");
  }
  s.conv_filters = get_int_list(o, "convFilters", s.conv_filters);
  s.dense = get_int_list(o, "dense", s.dense);
  s.dropout = get_number(o, "dropout", s.dropout);
  auto padding = get_string(o, "padding", s.same_padding ? "same" : "valid");
  if (padding != "same" && padding != "valid")
    throw Napi::TypeError::New(o.Env(), "model.padding: expected 'same' or 'valid', got '" + padding + "'");
  s.same_padding = padding == "same";
  s.batch_norm = get_bool(o, "batchNorm", s.batch_norm);
  s.hoc = get_bool(o, "hoc", s.hoc);
  s.fused_hoc = get_bool(o, "fusedHoc", s.fused_hoc);
  s.convs_per_block = get_int(o, "convsPerBlock", s.convs_per_block, 1, 4);
  s.residual = get_bool(o, "residual", s.residual);
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
  if (betas.IsArray() && betas.As<Napi::Array>().Length() == 2) {
    c.beta1 = betas.As<Napi::Array>().Get(0u).As<Napi::Number>().DoubleValue();
    c.beta2 = betas.As<Napi::Array>().Get(1u).As<Napi::Number>().DoubleValue();
  } else if (!betas.IsUndefined()) {
    throw Napi::TypeError::New(o.Env(), "optimizer.betas: expected [beta1, beta2]");
  }
  if (!(c.lr > 0)) throw Napi::TypeError::New(o.Env(), "optimizer.lr: must be > 0");
  if (c.weight_decay < 0) throw Napi::TypeError::New(o.Env(), "optimizer.weightDecay: must be >= 0");
  if (c.name != "adam" && c.name != "adamw")
    throw Napi::TypeError::New(o.Env(), "optimizer.name: unknown optimizer '" + c.name + "' (allowed: adam, adamw)");
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
  if (a.IsObject()) {
    auto ao = a.As<Napi::Object>();
    e.augment.hflip = get_bool(ao, "hflip", false);
    e.augment.shift = get_int(ao, "shift", 0, 0, 16);
  }
  e.label_smoothing = get_number(o, "labelSmoothing", 0);
  if (!(e.label_smoothing >= 0 && e.label_smoothing < 1))
    throw Napi::TypeError::New(o.Env(), "labelSmoothing: must be in [0, 1)");
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

Napi::Float32Array to_float32_array(Napi::Env env, const std::vector<float>& v) {
  auto a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

}  // namespace cifake
