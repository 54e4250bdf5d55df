#include "session.h"

#include "convert.h"
#include "dist_binding.h"

namespace cifake {

Napi::Function Session::Init(Napi::Env env) {
  return DefineClass(env, "Session",
                     {
                         InstanceMethod<&Session::SetData>("setData"),
                         InstanceMethod<&Session::DropData>("dropData"),
                         InstanceMethod<&Session::TrainEpoch>("trainEpoch"),
                         InstanceMethod<&Session::Predict>("predict"),
                         InstanceMethod<&Session::GradCam>("gradcam"),
                         InstanceMethod<&Session::Snapshot>("snapshot"),
                         InstanceMethod<&Session::Restore>("restore"),
                         InstanceMethod<&Session::Save>("save"),
                         InstanceMethod<&Session::Load>("load"),
                         InstanceMethod<&Session::State>("state"),
                         InstanceMethod<&Session::Cancel>("cancel"),
                         InstanceMethod<&Session::Dispose>("dispose"),
                         InstanceMethod<&Session::Describe>("describe"),
                         InstanceMethod<&Session::AttachGroup>("attachGroup"),
                         InstanceMethod<&Session::BroadcastState>("broadcastState"),
                     });
}

// new Session(modelSpec, { device, seed, threads, optimizer, channelsLast, amp })
Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  auto env = info.Env();
  auto spec = to_model_spec(info[0]);
  auto opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  auto device = get_string(opts, "device", "auto");
  auto seed = static_cast<uint64_t>(get_int(opts, "seed", 42, 0, int64_t(1) << 53));
  auto threads = static_cast<int>(get_int(opts, "threads", 0, 0, 4096));
  auto optimizer = to_optimizer(opts.Get("optimizer"));
  auto channels_last = get_bool(opts, "channelsLast", false);
  auto amp = get_string(opts, "amp", "none");
  try {
    trainer_ = std::make_shared<Trainer>(spec, device, seed, optimizer, channels_last, amp);
  } catch (...) {
    throw Napi::Error::New(env, current_exception_message());
  }
  worker_ = std::make_unique<Worker>(threads);
  env_ = env;
  napi_add_env_cleanup_hook(env, &Session::CleanupHook, this);
}

// At exit (or worker_threads teardown) the worker thread must be joined before the env goes away.
void Session::CleanupHook(void* self) { static_cast<Session*>(self)->shutdown(); }

Session::~Session() {
  napi_remove_env_cleanup_hook(env_, &Session::CleanupHook, this);
  shutdown();
}

// Tells V8 how much native memory the datasets hold, so the GC weighs a forgotten model properly.
void Session::account_data(Napi::Env env, const std::string& key, int64_t bytes) {
  if (!worker_) return;  // disposed: everything was already given back
  auto it = data_bytes_.find(key);
  int64_t delta = bytes - (it == data_bytes_.end() ? 0 : it->second);
  if (bytes > 0) data_bytes_[key] = bytes;
  else if (it != data_bytes_.end()) data_bytes_.erase(it);
  if (delta != 0) Napi::MemoryManagement::AdjustExternalMemory(env, delta);
}

void Session::shutdown() {
  if (!worker_) return;
  if (env_) {
    int64_t total = 0;
    for (auto& kv : data_bytes_) total += kv.second;
    data_bytes_.clear();
    if (total) napi_adjust_external_memory(env_, -total, nullptr);
  }
  cancel_below_->store(UINT64_MAX);
  worker_->stop();
  worker_.reset();
  trainer_.reset();
}

Worker& Session::worker(Napi::Env env) {
  if (disposed_ || !worker_) throw Napi::Error::New(env, "this model was disposed; load or create a new one");
  return *worker_;
}

Napi::Promise Session::run(const Napi::CallbackInfo& info, std::vector<Napi::Value> keep,
                           std::function<JsResult()> work) {
  keep.push_back(Value());
  return run_async(info.Env(), worker(info.Env()), keep, std::move(work));
}

// setData(key, images: Uint8Array N*3*32*32, labels: Uint8Array N | null)
Napi::Value Session::SetData(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "setData: key must be a string");
  auto key = info[0].As<Napi::String>().Utf8Value();
  auto images = get_bytes(info[1], "images");
  bool has_labels = !(info[2].IsUndefined() || info[2].IsNull());
  Napi::Uint8Array labels = has_labels ? get_bytes(info[2], "labels") : Napi::Uint8Array();
  const int64_t n = check_images(images, has_labels ? &labels : nullptr);
  if (n == 0) throw Napi::RangeError::New(env, "images: empty dataset");
  const uint8_t* img = images.Data();
  const uint8_t* lab = has_labels ? labels.Data() : nullptr;
  std::vector<Napi::Value> keep{images};
  if (has_labels) keep.push_back(labels);
  auto t = trainer_;
  const int64_t bytes = n * (kChannels * kImageSize * kImageSize + (lab ? 4 : 0));
  return run(info, keep, [this, t, key, img, lab, n, bytes]() -> JsResult {
    t->set_data(key, img, lab, n);
    return [this, key, bytes](Napi::Env env) -> Napi::Value {
      account_data(env, key, bytes);
      return env.Undefined();
    };
  });
}

Napi::Value Session::DropData(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "dropData: key must be a string");
  auto key = info[0].As<Napi::String>().Utf8Value();
  auto t = trainer_;
  return run(info, {}, [this, t, key]() -> JsResult {
    t->drop_data(key);
    return [this, key](Napi::Env env) -> Napi::Value {
      account_data(env, key, 0);
      return env.Undefined();
    };
  });
}

namespace {

struct ProgressBridge {
  Napi::ThreadSafeFunction tsfn;
  bool active = false;
};

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

}  // namespace

// trainEpoch({ data, batchSize, seed, epoch, shuffle, lr, augment }, onProgress?) -> EpochResult
Napi::Value Session::TrainEpoch(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto opts = to_epoch_options(info[0]);
  auto bridge = std::make_shared<ProgressBridge>();
  if (info[1].IsFunction()) {
    bridge->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "cifake-progress", 0, 1);
    bridge->active = true;
  }
  const uint64_t ticket = next_epoch_ticket_++;
  auto cancel_below = cancel_below_;
  auto t = trainer_;
  try {
    return run(info, {}, [t, opts, bridge, ticket, cancel_below]() -> JsResult {
      struct Release {
        ProgressBridge& b;
        ~Release() {
          if (b.active) b.tsfn.Release();
        }
      } release{*bridge};
      auto report = [&](const EpochProgress& p) {
        if (!bridge->active) return;
        auto copy = new EpochProgress(p);
        auto status = bridge->tsfn.NonBlockingCall(copy, [](Napi::Env env, Napi::Function fn, EpochProgress* data) {
          std::unique_ptr<EpochProgress> owned(data);
          if (env != nullptr && fn != nullptr) fn.Call({progress_to_js(env, *owned)});
        });
        if (status != napi_ok) delete copy;
      };
      auto r = t->train_epoch(opts, report, [&] { return ticket < cancel_below->load(); });
      return [r](Napi::Env env) -> Napi::Value {
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
      };
    });
  } catch (...) {
    if (bridge->active) bridge->tsfn.Release();
    throw;
  }
}

// predict(key: string | images: Uint8Array, { batchSize }) -> Float32Array of logits
Napi::Value Session::Predict(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  const int64_t batch = get_int(opts, "batchSize", 1024, 1, 1 << 20);
  auto t = trainer_;
  auto to_js = [](std::vector<float> logits) -> JsResult {
    auto shared = std::make_shared<std::vector<float>>(std::move(logits));
    return [shared](Napi::Env env) -> Napi::Value { return to_float32_array(env, *shared); };
  };
  if (info[0].IsString()) {
    auto key = info[0].As<Napi::String>().Utf8Value();
    return run(info, {}, [t, key, batch, to_js]() { return to_js(t->predict(key, batch)); });
  }
  auto images = get_bytes(info[0], "images");
  const int64_t n = check_images(images, nullptr);
  const uint8_t* img = images.Data();
  return run(info, {images}, [t, img, n, batch, to_js]() { return to_js(t->predict(img, n, batch)); });
}

// gradcam(images, { layer, target, method, size }) -> { n, layer, layerSize, size, raw, maps, rawMax, logits, targets }
Napi::Value Session::GradCam(const Napi::CallbackInfo& info) {
  auto images = get_bytes(info[0], "images");
  const int64_t n = check_images(images, nullptr);
  auto opts = to_gradcam_options(info[1]);
  const uint8_t* img = images.Data();
  auto t = trainer_;
  // Check the layer name now, so the error names it before any work is queued.
  if (!opts.layer.empty() && t->model()->layer_size(opts.layer) < 0) {
    std::string names;
    for (const auto& l : t->model()->layer_names()) names += (names.empty() ? "" : ", ") + l;
    throw Napi::Error::New(info.Env(), "layer: unknown layer '" + opts.layer + "' (valid: " + names + ")");
  }
  return run(info, {images}, [t, img, n, opts]() -> JsResult {
    auto r = std::make_shared<GradCamResult>(t->gradcam(img, n, opts));
    return [r](Napi::Env env) -> Napi::Value {
      auto o = Napi::Object::New(env);
      o.Set("n", Napi::Number::New(env, double(r->n)));
      o.Set("layer", Napi::String::New(env, r->layer));
      o.Set("layerSize", Napi::Number::New(env, double(r->layer_size)));
      o.Set("size", Napi::Number::New(env, double(r->out_size)));
      o.Set("raw", to_float32_array(env, r->raw));
      o.Set("maps", to_float32_array(env, r->upsampled));
      o.Set("rawMax", to_float32_array(env, r->raw_max));
      o.Set("logits", to_float32_array(env, r->logits));
      auto targets = Napi::Int32Array::New(env, r->targets.size());
      std::copy(r->targets.begin(), r->targets.end(), targets.Data());
      o.Set("targets", targets);
      return o;
    };
  });
}

Napi::Value Session::Snapshot(const Napi::CallbackInfo& info) {
  auto t = trainer_;
  return run(info, {}, [t]() -> JsResult {
    t->snapshot();
    return nullptr;
  });
}

Napi::Value Session::Restore(const Napi::CallbackInfo& info) {
  auto t = trainer_;
  return run(info, {}, [t]() -> JsResult {
    t->restore();
    return nullptr;
  });
}

// save(path, metaJson)
Napi::Value Session::Save(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "save: path must be a string");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "save: meta must be a JSON string");
  auto path = info[0].As<Napi::String>().Utf8Value();
  auto meta = info[1].As<Napi::String>().Utf8Value();
  auto t = trainer_;
  return run(info, {}, [t, path, meta]() -> JsResult {
    t->save(path, meta);
    return nullptr;
  });
}

// load(path, { optimizer: true }) -> metaJson
Napi::Value Session::Load(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "load: path must be a string");
  auto path = info[0].As<Napi::String>().Utf8Value();
  auto opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  bool with_optimizer = get_bool(opts, "optimizer", true);
  auto t = trainer_;
  return run(info, {}, [t, path, with_optimizer]() -> JsResult {
    auto meta = std::make_shared<std::string>(t->load(path, with_optimizer));
    return [meta](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *meta); };
  });
}

// state() -> { [name]: Float32Array } (parameters and buffers, on CPU)
Napi::Value Session::State(const Napi::CallbackInfo& info) {
  auto t = trainer_;
  return run(info, {}, [t]() -> JsResult {
    auto s = std::make_shared<std::vector<std::pair<std::string, torch::Tensor>>>(t->state());
    return [s](Napi::Env env) -> Napi::Value {
      auto o = Napi::Object::New(env);
      for (auto& [name, tensor] : *s) {
        auto a = Napi::Float32Array::New(env, tensor.numel());
        std::memcpy(a.Data(), tensor.data_ptr<float>(), tensor.numel() * sizeof(float));
        o.Set(name, a);
      }
      return o;
    };
  });
}

Napi::Value Session::Cancel(const Napi::CallbackInfo& info) {
  cancel_below_->store(next_epoch_ticket_);
  return info.Env().Undefined();
}

Napi::Value Session::Dispose(const Napi::CallbackInfo& info) {
  disposed_ = true;
  shutdown();
  return info.Env().Undefined();
}

// attachGroup(group: DistGroup | null): later epochs train data-parallel in that group.
Napi::Value Session::AttachGroup(const Napi::CallbackInfo& info) {
  auto g = DistGroupWrap::FromValue(info[0], "attachGroup");
  auto t = trainer_;
  return run(info, {}, [t, g]() -> JsResult {
    t->set_group(g);
    return nullptr;
  });
}

// broadcastState(root = 0): every rank takes rank root's parameters and buffers.
Napi::Value Session::BroadcastState(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("root", info[0]);
  const int root = static_cast<int>(get_int(o, "root", 0, 0, 1 << 16));
  auto t = trainer_;
  return run(info, {}, [t, root]() -> JsResult {
    t->broadcast_state(root);
    return nullptr;
  });
}

// describe() -> { family, parameters, layers, defaultLayer, layerSizes, device }
Napi::Value Session::Describe(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (disposed_ || !trainer_) throw Napi::Error::New(env, "this model was disposed; load or create a new one");
  auto& m = trainer_->model();
  auto o = Napi::Object::New(env);
  o.Set("family", Napi::String::New(env, m->spec().family));
  o.Set("parameters", Napi::Number::New(env, double(m->parameter_count())));
  auto layers = Napi::Array::New(env);
  auto sizes = Napi::Object::New(env);
  uint32_t i = 0;
  for (const auto& l : m->layer_names()) {
    layers.Set(i++, Napi::String::New(env, l));
    sizes.Set(l, Napi::Number::New(env, double(m->layer_size(l))));
  }
  o.Set("layers", layers);
  o.Set("layerSizes", sizes);
  o.Set("defaultLayer", Napi::String::New(env, m->default_cam_layer()));
  o.Set("device", Napi::String::New(env, trainer_->device().str()));
  return o;
}

}  // namespace cifake
