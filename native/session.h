// The JS class `Session`: one model, its optimizer and data on one device, driven from one
// worker thread. Every method checks that the session is live, validates its arguments on the JS
// thread (copying input bytes), then queues the work.
#pragma once

#include "trainer.h"
#include "worker.h"

#include <napi.h>

#include <atomic>
#include <map>
#include <memory>

namespace cifake {

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

 private:
  Napi::Value SetData(const Napi::CallbackInfo& info);
  Napi::Value DropData(const Napi::CallbackInfo& info);
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value GradCam(const Napi::CallbackInfo& info);
  Napi::Value Snapshot(const Napi::CallbackInfo& info);
  Napi::Value Restore(const Napi::CallbackInfo& info);
  Napi::Value SwapEma(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value State(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value AttachGroup(const Napi::CallbackInfo& info);
  Napi::Value BroadcastState(const Napi::CallbackInfo& info);

  // The trainer, or a JS error when this session was disposed (checked before anything else).
  std::shared_ptr<Trainer> live(Napi::Env env);
  Napi::Promise run(const Napi::CallbackInfo& info, std::function<JsResult()> work);
  void release_accounting();

  napi_env env_ = nullptr;
  // Bytes of dataset tensors held natively, per key, as reported to V8 (JS thread only).
  std::map<std::string, int64_t> data_bytes_;
  void account_data(Napi::Env env, const std::string& key, int64_t bytes);

  std::shared_ptr<Trainer> trainer_;
  // Epochs are numbered as they are queued; cancel() cancels every epoch queued before it.
  std::shared_ptr<std::atomic<uint64_t>> cancel_below_ = std::make_shared<std::atomic<uint64_t>>(0);
  uint64_t next_epoch_ticket_ = 0;
  std::unique_ptr<JobHost> host_;
};

}  // namespace cifake
