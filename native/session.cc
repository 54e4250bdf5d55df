#include "session.h"

#include "convert.h"
#include "dist_binding.h"

namespace cifake {

namespace {
constexpr const char* kDisposed = "this model was disposed; load or create a new one";
}  // namespace

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
                         InstanceMethod<&Session::SwapEma>("swapEma"),
                         InstanceMethod<&Session::Save>("save"),
                         InstanceMethod<&Session::Load>("load"),
                         InstanceMethod<&Session::State>("state"),
                         InstanceMethod<&Session::SetState>("setState"),
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
  auto opts = options_arg(info[1], "session options");
  auto device = get_string(opts, "device", "auto");
  auto seed = static_cast<uint64_t>(get_int(opts, "seed", 42, 0, int64_t(1) << 53));
  auto threads = static_cast<int>(get_int(opts, "threads", 0, 0, 4096));
  auto optimizer = to_optimizer(opts.Get("optimizer"));
  auto channels_last = get_bool(opts, "channelsLast", false);
  auto amp = get_string(opts, "amp", "none");
  trainer_ = guarded(env, [&] { return std::make_shared<Trainer>(spec, device, seed, optimizer, channels_last, amp); });
  auto cancel_below = cancel_below_;
  host_ = std::make_unique<JobHost>(env, threads, [cancel_below] { cancel_below->store(UINT64_MAX); }, kDisposed);
  env_ = env;
}

Session::~Session() {
  release_accounting();
  host_.reset();  // joins the worker (idle by now: every job keeps this object alive)
}

std::shared_ptr<Trainer> Session::live(Napi::Env env) {
  if (!host_ || !host_->live() || !trainer_) throw Napi::Error::New(env, kDisposed);
  return trainer_;
}

Napi::Promise Session::run(const Napi::CallbackInfo& info, std::function<JsResult()> work) {
  return host_->run(info.Env(), Value(), {}, [work = std::move(work)](JobContext&) { return work(); });
}

// Tells V8 how much native memory the datasets hold, so the GC weighs a forgotten model properly.
void Session::account_data(Napi::Env env, const std::string& key, int64_t bytes) {
  if (!trainer_) return;  // disposed: everything was already given back
  auto it = data_bytes_.find(key);
  int64_t delta = bytes - (it == data_bytes_.end() ? 0 : it->second);
  if (bytes > 0) data_bytes_[key] = bytes;
  else if (it != data_bytes_.end()) data_bytes_.erase(it);
  if (delta != 0) Napi::MemoryManagement::AdjustExternalMemory(env, delta);
}

void Session::release_accounting() {
  int64_t total = 0;
  for (auto& kv : data_bytes_) total += kv.second;
  data_bytes_.clear();
  if (total && env_) napi_adjust_external_memory(env_, -total, nullptr);
}

// setData(key, images: Uint8Array N*3*32*32, labels: Uint8Array N | null)
Napi::Value Session::SetData(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto t = live(env);
  auto key = string_arg(info[0], "setData: key");
  auto images = get_bytes(info[1], "images");
  bool has_labels = !(info[2].IsUndefined() || info[2].IsNull());
  Napi::Uint8Array labels = has_labels ? get_bytes(info[2], "labels") : Napi::Uint8Array();
  const int64_t n = check_images(images, has_labels ? &labels : nullptr);
  if (n == 0) throw Napi::RangeError::New(env, "images: empty dataset");
  auto img = copy_to_tensor(images, {n, kChannels, kImageSize, kImageSize});
  auto lab = has_labels ? copy_to_tensor(labels, {n}) : torch::Tensor();
  const int64_t bytes = n * (kChannels * kImageSize * kImageSize + (has_labels ? 4 : 0));
  return run(info, [this, t, key, img, lab, bytes]() -> JsResult {
    t->set_data(key, img, lab);
    return [this, key, bytes](Napi::Env env) -> Napi::Value {
      account_data(env, key, bytes);
      return env.Undefined();
    };
  });
}

Napi::Value Session::DropData(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  auto key = string_arg(info[0], "dropData: key");
  return run(info, [this, t, key]() -> JsResult {
    t->drop_data(key);
    return [this, key](Napi::Env env) -> Napi::Value {
      account_data(env, key, 0);
      return env.Undefined();
    };
  });
}

namespace {

// The JS side of an epoch's progress reports. JS thread only, except `failed`.
struct ProgressBridge {
  Napi::FunctionReference fn;
  Napi::ObjectReference error;  // { thrown }: what the callback threw (any JS value)
  std::atomic<bool> failed{false};
};

}  // namespace

// trainEpoch({ data, batchSize, seed, epoch, shuffle, lr, augment }, onProgress?) -> EpochResult
// A throwing onProgress stops the epoch (as cancel() would) and rejects with what it threw.
Napi::Value Session::TrainEpoch(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto t = live(env);
  auto opts = to_epoch_options(info[0]);
  if (!info[1].IsUndefined() && !info[1].IsNull() && !info[1].IsFunction())
    throw Napi::TypeError::New(env, "trainEpoch: onProgress must be a function");
  auto bridge = std::make_shared<ProgressBridge>();
  if (info[1].IsFunction()) bridge->fn = Napi::Persistent(info[1].As<Napi::Function>());
  const uint64_t ticket = next_epoch_ticket_++;
  auto cancel_below = cancel_below_;
  auto work = [t, opts, bridge, ticket, cancel_below](JobContext& ctx) -> JsResult {
    auto report = [&](const EpochProgress& p) {
      if (bridge->fn.IsEmpty() || bridge->failed) return;
      ctx.call_js([bridge, p](Napi::Env env) {
        if (bridge->failed || bridge->fn.IsEmpty()) return;
        try {
          bridge->fn.Call({progress_to_js(env, p)});
        } catch (const Napi::Error& e) {
          auto holder = Napi::Object::New(env);
          holder.Set("thrown", e.Value());
          bridge->error = Napi::Persistent(holder);
          bridge->failed = true;
        }
      });
    };
    auto r = t->train_epoch(opts, report, [&] { return ticket < cancel_below->load() || bridge->failed; });
    return [r, bridge](Napi::Env env) -> Napi::Value {
      if (!bridge->error.IsEmpty()) throw Napi::Error(env, bridge->error.Value().Get("thrown"));
      return epoch_result_to_js(env, r);
    };
  };
  return host_->run(env, Value(), {}, work, [bridge] {
    bridge->fn.Reset();
    bridge->error.Reset();
  });
}

// predict(key: string | images: Uint8Array, { batchSize }) -> Float32Array of logits
Napi::Value Session::Predict(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto t = live(env);
  auto opts = options_arg(info[1], "predict options");
  const int64_t batch = get_int(opts, "batchSize", 1024, 1, 1 << 20);
  auto to_js = [](std::vector<float> logits) -> JsResult {
    auto shared = std::make_shared<std::vector<float>>(std::move(logits));
    return [shared](Napi::Env env) -> Napi::Value { return to_float32_array(env, *shared); };
  };
  if (info[0].IsString()) {
    auto key = info[0].As<Napi::String>().Utf8Value();
    return run(info, [t, key, batch, to_js]() { return to_js(t->predict(key, batch)); });
  }
  auto images = get_bytes(info[0], "images");
  const int64_t n = check_images(images, nullptr);
  auto img = copy_to_tensor(images, {n, kChannels, kImageSize, kImageSize});
  return run(info, [t, img, batch, to_js]() { return to_js(t->predict(img, batch)); });
}

// gradcam(images, { layer, target, method, size }) -> { n, layer, layerSize, size, raw, maps, rawMax, logits, targets }
Napi::Value Session::GradCam(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto t = live(env);
  auto images = get_bytes(info[0], "images");
  const int64_t n = check_images(images, nullptr);
  auto opts = to_gradcam_options(info[1]);
  // Check the layer name now, so the error names it before any work is queued.
  if (!opts.layer.empty()) guarded(env, [&] { check_cam_layer(*t->model(), opts.layer); });
  auto img = copy_to_tensor(images, {n, kChannels, kImageSize, kImageSize});
  return run(info, [t, img, opts]() -> JsResult {
    auto r = std::make_shared<GradCamResult>(t->gradcam(img, opts));
    return [r](Napi::Env env) -> Napi::Value { return gradcam_result_to_js(env, *r); };
  });
}

Napi::Value Session::Snapshot(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  return run(info, [t]() -> JsResult {
    t->snapshot();
    return nullptr;
  });
}

Napi::Value Session::Restore(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  return run(info, [t]() -> JsResult {
    t->restore();
    return nullptr;
  });
}

// swapEma() -> true when the model now holds its weight average, false when its trained weights
Napi::Value Session::SwapEma(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  return run(info, [t]() -> JsResult {
    const bool averaged = t->swap_ema();
    return [averaged](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, averaged); };
  });
}

// save(path, metaJson)
Napi::Value Session::Save(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  auto path = string_arg(info[0], "save: path");
  auto meta = string_arg(info[1], "save: meta (a JSON string)");
  return run(info, [t, path, meta]() -> JsResult {
    t->save(path, meta);
    return nullptr;
  });
}

// load(path, { optimizer: true }) -> metaJson
Napi::Value Session::Load(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  auto path = string_arg(info[0], "load: path");
  bool with_optimizer = get_bool(options_arg(info[1], "load options"), "optimizer", true);
  return run(info, [t, path, with_optimizer]() -> JsResult {
    auto meta = std::make_shared<std::string>(t->load(path, with_optimizer));
    return [meta](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *meta); };
  });
}

// state() -> { [name]: Float32Array } (parameters and buffers, on CPU)
Napi::Value Session::State(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  return run(info, [t]() -> JsResult {
    auto s = std::make_shared<std::vector<std::pair<std::string, torch::Tensor>>>(t->state());
    return [s](Napi::Env env) -> Napi::Value { return state_to_js(env, *s); };
  });
}

// cancel(): a no-op once disposed (an AbortSignal may fire after dispose()).
Napi::Value Session::Cancel(const Napi::CallbackInfo& info) {
  cancel_below_->store(next_epoch_ticket_);
  return info.Env().Undefined();
}

// dispose() -> Promise<void>: returns at once; the running epoch is cancelled, and the model and
// its data are freed on the worker thread after it. The promise never rejects (callers may ignore it).
Napi::Value Session::Dispose(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  release_accounting();
  auto t = std::move(trainer_);
  return host_->close(env, Value(), [t]() mutable { t.reset(); });
}

// attachGroup(group: DistGroup | null): later epochs train data-parallel in that group.
Napi::Value Session::AttachGroup(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  auto g = DistGroupWrap::FromValue(info[0], "attachGroup");
  return run(info, [t, g]() -> JsResult {
    t->set_group(g);
    return nullptr;
  });
}

// setState({ [name]: Float32Array }) -> every parameter and buffer replaced (names and sizes checked
// first: nothing changes unless all match). The arrays are copied on this thread.
Napi::Value Session::SetState(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  auto values = std::make_shared<std::vector<std::pair<std::string, std::vector<float>>>>(state_from_js(info[0]));
  return run(info, [t, values]() -> JsResult {
    t->set_state(*values);
    return nullptr;
  });
}

// broadcastState(root = 0): every rank takes rank root's parameters and buffers.
Napi::Value Session::BroadcastState(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  const int root = static_cast<int>(arg_int(info[0], "root", 0, 0, 1 << 16));
  return run(info, [t, root]() -> JsResult {
    t->broadcast_state(root);
    return nullptr;
  });
}

// describe() -> { family, parameters, layers, defaultLayer, layerSizes, device }
Napi::Value Session::Describe(const Napi::CallbackInfo& info) {
  auto t = live(info.Env());
  return describe_to_js(info.Env(), *t->model(), t->device());
}

}  // namespace cifake
