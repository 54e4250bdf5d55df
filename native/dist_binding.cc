#include "dist_binding.h"

#include "convert.h"

namespace cifake {

namespace {
// Marks objects made by this class, so FromValue never unwraps a foreign object.
const napi_type_tag kDistGroupTag = {0x6369666b65646973ULL, 0x7467726f75700001ULL};
}  // namespace

Napi::Function DistGroupWrap::Init(Napi::Env env) {
  return DefineClass(env, "DistGroup",
                     {
                         InstanceMethod<&DistGroupWrap::Connect>("connect"),
                         InstanceMethod<&DistGroupWrap::BroadcastBytes>("broadcastBytes"),
                         InstanceMethod<&DistGroupWrap::AllGather>("allGather"),
                         InstanceMethod<&DistGroupWrap::AllReduce>("allReduce"),
                         InstanceMethod<&DistGroupWrap::Barrier>("barrier"),
                         InstanceMethod<&DistGroupWrap::Close>("close"),
                         InstanceAccessor<&DistGroupWrap::GetRank>("rank"),
                         InstanceAccessor<&DistGroupWrap::GetSize>("size"),
                     });
}

// new DistGroup({ rank, worldSize, masterAddr, masterPort, timeoutMs, ifname })
DistGroupWrap::DistGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DistGroupWrap>(info) {
  auto env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "DistGroup: options must be an object");
  auto o = info[0].As<Napi::Object>();
  opts_.world_size = static_cast<int>(get_int(o, "worldSize", 1, 1, 1 << 16));
  opts_.rank = static_cast<int>(get_int(o, "rank", 0, 0, opts_.world_size - 1));
  opts_.master_addr = get_string(o, "masterAddr", "127.0.0.1");
  opts_.master_port = static_cast<int>(get_int(o, "masterPort", 29500, 1, 65535));
  opts_.timeout_ms = get_int(o, "timeoutMs", 300000, 1, int64_t(1) << 40);
  opts_.ifname = get_string(o, "ifname", "");
  info.This().As<Napi::Object>().TypeTag(&kDistGroupTag);
  host_ = std::make_unique<JobHost>(env, 0, nullptr, "this DistGroup was closed");
}

std::shared_ptr<DistGroup> DistGroupWrap::FromValue(const Napi::Value& v, const char* what) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kDistGroupTag))
    throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a DistGroup or null");
  auto* self = Unwrap(v.As<Napi::Object>());
  return self->connected(v.Env());
}

std::shared_ptr<DistGroup> DistGroupWrap::connected(Napi::Env env) {
  host_->check_live(env);
  if (!group_) throw Napi::Error::New(env, "this DistGroup is not connected yet (await group.connect() first)");
  return group_;
}

Napi::Promise DistGroupWrap::run(const Napi::CallbackInfo& info, std::function<JsResult()> work) {
  return host_->run(info.Env(), Value(), {}, [work = std::move(work)](JobContext&) { return work(); });
}

// connect() -> Promise<void>: blocks (off the JS thread) until every rank has joined.
Napi::Value DistGroupWrap::Connect(const Napi::CallbackInfo& info) {
  host_->check_live(info.Env());
  if (group_ || connecting_) throw Napi::Error::New(info.Env(), "DistGroup: connect() was already called");
  connecting_ = true;
  auto opts = opts_;
  return run(info, [this, opts]() -> JsResult {
    auto g = std::make_shared<DistGroup>(opts);
    return [this, g](Napi::Env env) -> Napi::Value {
      if (host_->live()) group_ = g;
      return env.Undefined();
    };
  });
}

// broadcastBytes(bytes: Uint8Array | null, root) -> Promise<Uint8Array> (root's bytes on every rank)
Napi::Value DistGroupWrap::BroadcastBytes(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto g = connected(env);
  const int root = static_cast<int>(arg_int(info[1], "root", 0, 0, g->size() - 1));
  auto bytes = std::make_shared<std::vector<uint8_t>>();
  if (g->rank() == root) {
    auto b = get_bytes(info[0], "bytes");
    bytes->assign(b.Data(), b.Data() + b.ByteLength());
  }
  return run(info, [g, bytes, root]() -> JsResult {
    auto out = std::make_shared<std::vector<uint8_t>>(g->broadcast_bytes(*bytes, root));
    return [out](Napi::Env env) -> Napi::Value { return to_uint8_array(env, *out); };
  });
}

// allGather(values: Float32Array) -> Promise<Float32Array>: every rank's values in rank order
Napi::Value DistGroupWrap::AllGather(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto g = connected(env);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "allGather: values must be a Float32Array");
  auto a = info[0].As<Napi::Float32Array>();
  auto local = std::make_shared<std::vector<float>>(a.Data(), a.Data() + a.ElementLength());
  return run(info, [g, local]() -> JsResult {
    auto out = std::make_shared<std::vector<float>>(g->allgather_floats(*local));
    return [out](Napi::Env env) -> Napi::Value { return to_float32_array(env, *out); };
  });
}

// allReduce(values: Float64Array, op: 'sum' | 'max') -> Promise<Float64Array>
Napi::Value DistGroupWrap::AllReduce(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto g = connected(env);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, "allReduce: values must be a Float64Array");
  auto a = info[0].As<Napi::Float64Array>();
  auto local = std::make_shared<std::vector<double>>(a.Data(), a.Data() + a.ElementLength());
  std::string op = info[1].IsUndefined() ? "sum" : (info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "?");
  if (op != "sum" && op != "max") throw Napi::TypeError::New(env, "allReduce: op must be 'sum' or 'max'");
  const bool max = op == "max";
  return run(info, [g, local, max]() -> JsResult {
    auto out = std::make_shared<std::vector<double>>(g->allreduce_doubles(*local, max));
    return [out](Napi::Env env) -> Napi::Value { return to_float64_array(env, *out); };
  });
}

Napi::Value DistGroupWrap::Barrier(const Napi::CallbackInfo& info) {
  auto g = connected(info.Env());
  return run(info, [g]() -> JsResult {
    g->barrier();
    return nullptr;
  });
}

// close() -> Promise<void>: leaves the group without blocking the JS thread (a collective in
// flight finishes or times out on the worker). Sessions that attached the group keep it until they
// detach or are disposed. Never rejects.
Napi::Value DistGroupWrap::Close(const Napi::CallbackInfo& info) {
  auto g = std::move(group_);
  return host_->close(info.Env(), Value(), [g]() mutable { g.reset(); });
}

Napi::Value DistGroupWrap::GetRank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), opts_.rank); }
Napi::Value DistGroupWrap::GetSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), opts_.world_size);
}

}  // namespace cifake
