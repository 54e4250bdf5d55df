// The JS class `DistGroup`: this process's membership in a c10d process group. Connecting and every
// collective run on the group's own worker thread; sessions train with it via attachGroup().
#pragma once

#include "dist.h"
#include "worker.h"

#include <napi.h>

#include <memory>

namespace cifake {

class DistGroupWrap : public Napi::ObjectWrap<DistGroupWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit DistGroupWrap(const Napi::CallbackInfo& info);
  ~DistGroupWrap() override = default;

  // The connected group behind a JS value, or null for null/undefined; throws for anything else.
  static std::shared_ptr<DistGroup> FromValue(const Napi::Value& v, const char* what);

 private:
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value BroadcastBytes(const Napi::CallbackInfo& info);
  Napi::Value AllGather(const Napi::CallbackInfo& info);
  Napi::Value AllReduce(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetRank(const Napi::CallbackInfo& info);
  Napi::Value GetSize(const Napi::CallbackInfo& info);

  std::shared_ptr<DistGroup> connected(Napi::Env env);
  Napi::Promise run(const Napi::CallbackInfo& info, std::function<JsResult()> work);

  DistOptions opts_;
  std::shared_ptr<DistGroup> group_;
  bool connecting_ = false;
  std::unique_ptr<JobHost> host_;
};

}  // namespace cifake
