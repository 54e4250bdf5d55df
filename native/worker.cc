#include "worker.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

namespace cifake {

Worker::Worker(int threads) : thread_([this, threads] { run(threads); }) {}

Worker::~Worker() { stop(); }

void Worker::run(int threads) {
  at::init_num_threads();
  if (threads > 0) at::set_num_threads(threads);
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued job has run (and rejected itself)
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

void Worker::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw std::runtime_error("this model was disposed");
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Worker::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::string current_exception_message() {
  try {
    throw;
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown native error";
  }
}

namespace {

struct AsyncCall {
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> keep_alive;
  Napi::ThreadSafeFunction tsfn;
  JsResult result;
  std::string error;
  bool failed = false;
  explicit AsyncCall(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void settle(Napi::Env env, AsyncCall& call) {
  Napi::HandleScope scope(env);
  if (call.failed) {
    call.deferred.Reject(Napi::Error::New(env, call.error).Value());
  } else {
    try {
      call.deferred.Resolve(call.result ? call.result(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      call.deferred.Reject(e.Value());
    } catch (...) {
      call.deferred.Reject(Napi::Error::New(env, current_exception_message()).Value());
    }
  }
  for (auto& r : call.keep_alive) r.Reset();
}

}  // namespace

Napi::Promise run_async(Napi::Env env, Worker& worker, const std::vector<Napi::Value>& keep_alive,
                        std::function<JsResult()> work) {
  auto call = std::make_shared<AsyncCall>(env);
  for (const auto& v : keep_alive) call->keep_alive.push_back(Napi::Persistent(v));
  call->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                             "cifake-job", 0, 1);
  auto promise = call->deferred.Promise();
  try {
    worker.post([call, &worker, work = std::move(work)] {
      try {
        if (worker.stopping()) throw std::runtime_error("this model was disposed");
        call->result = work();
      } catch (...) {
        call->failed = true;
        call->error = current_exception_message();
      }
      call->tsfn.BlockingCall([call](Napi::Env env, Napi::Function) { settle(env, *call); });
      call->tsfn.Release();
    });
  } catch (const std::exception& e) {
    call->tsfn.Release();
    for (auto& r : call->keep_alive) r.Reset();
    call->deferred.Reject(Napi::Error::New(env, e.what()).Value());
  }
  return promise;
}

}  // namespace cifake
