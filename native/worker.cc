#include "worker.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <set>

namespace cifake {

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_exiting{false};

// Every live worker; Worker's constructor and destructor keep it current.
std::mutex& registry_mutex() {
  static auto* m = new std::mutex;  // leaked on purpose: used from the atexit handler
  return *m;
}
std::set<Worker*>& registry() {
  static auto* s = new std::set<Worker*>;
  return *s;
}

void at_exit() { shutdown_for_exit(); }

}  // namespace

bool process_exiting() { return g_exiting.load(); }

// Bounded: a worker blocked in a collective is left (detached) after the timeout.
bool shutdown_for_exit() {
  g_exiting = true;
  return Worker::shutdown_all(std::chrono::seconds(10));
}

void install_exit_handler() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(at_exit); });
}

Worker::Worker(int threads, std::function<void()> cancel) : cancel_(std::move(cancel)) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  thread_ = std::thread([this, threads] { run(threads); });
  registry().insert(this);
}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    registry().erase(this);
  }
  request_stop();
  std::lock_guard<std::mutex> join_lock(join_mutex_);
  if (thread_.joinable()) thread_.join();
}

void Worker::run(int threads) {
  at::init_num_threads();
  if (threads > 0) at::set_num_threads(threads);
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and every queued job has run (and rejected itself)
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_ = true;
  cv_.notify_all();
}

void Worker::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw std::runtime_error("this model was disposed");
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
}

void Worker::post_last(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
  }
  request_stop();
}

void Worker::request_stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  if (cancel_) cancel_();
  cv_.notify_all();
}

bool Worker::stopping() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

bool Worker::wait_finished(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cv_.wait_until(lock, deadline, [this] { return finished_; });
}

bool Worker::shutdown(std::chrono::milliseconds timeout) {
  request_stop();
  std::lock_guard<std::mutex> join_lock(join_mutex_);
  if (!thread_.joinable()) return true;
  if (!wait_finished(Clock::now() + timeout)) {
    thread_.detach();
    return false;
  }
  thread_.join();
  return true;
}

bool Worker::shutdown_all(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  const auto deadline = Clock::now() + timeout;
  for (auto* w : registry()) w->request_stop();
  bool all = true;
  for (auto* w : registry()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    all = w->shutdown(std::max(left, std::chrono::milliseconds(0))) && all;
  }
  return all;
}

std::string current_exception_message() {
  try {
    throw;
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const Napi::Error& e) {
    return e.Message();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown native error";
  }
}

bool JobContext::call_js(std::function<void(Napi::Env)> fn) {
  if (process_exiting()) return false;
  auto status = tsfn_.NonBlockingCall([fn = std::move(fn)](Napi::Env env, Napi::Function) {
    if (env == nullptr) return;
    Napi::HandleScope scope(env);
    fn(env);
  });
  return status == napi_ok;
}

namespace {

struct AsyncCall {
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> keep_alive;
  std::function<void()> js_cleanup;
  Napi::ThreadSafeFunction tsfn;
  JsResult result;
  std::string error;
  bool failed = false;
  explicit AsyncCall(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}

  // JS thread: the JS references are dropped here, never on the worker.
  void release_js() {
    if (js_cleanup) js_cleanup();
    js_cleanup = nullptr;
    for (auto& r : keep_alive) r.Reset();
  }
};

void settle(Napi::Env env, AsyncCall& call) {
  Napi::HandleScope scope(env);
  Napi::Value value;
  bool ok = !call.failed;
  if (ok) {
    try {
      value = call.result ? call.result(env) : env.Undefined();
    } catch (const Napi::Error& e) {
      ok = false;
      value = e.Value();
    } catch (...) {
      ok = false;
      value = Napi::Error::New(env, current_exception_message()).Value();
    }
  } else {
    value = Napi::Error::New(env, call.error).Value();
  }
  call.result = nullptr;
  call.release_js();
  if (ok) call.deferred.Resolve(value);
  else call.deferred.Reject(value);
}

}  // namespace

Napi::Promise run_async(Napi::Env env, Worker& worker, JobSpec spec, Job work) {
  auto call = std::make_shared<AsyncCall>(env);
  for (const auto& v : spec.keep_alive) call->keep_alive.push_back(Napi::Persistent(v));
  call->js_cleanup = std::move(spec.js_cleanup);
  auto promise = call->deferred.Promise();
  try {
    call->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                               "cifake-job", 0, 1);
  } catch (...) {
    call->release_js();
    throw;
  }
  const bool last = spec.last;
  auto job = [call, &worker, last, work = std::move(work)] {
    try {
      if (!last && worker.stopping()) throw std::runtime_error("this model was disposed");
      JobContext ctx(call->tsfn);
      call->result = work(ctx);
    } catch (...) {
      call->failed = true;
      call->error = current_exception_message();
    }
    if (process_exiting()) return;  // the env is going away: nobody waits for this promise
    call->tsfn.BlockingCall([call](Napi::Env env, Napi::Function) {
      if (env != nullptr) settle(env, *call);
    });
    call->tsfn.Release();
  };
  try {
    if (last) worker.post_last(std::move(job));
    else worker.post(std::move(job));
  } catch (const std::exception& e) {
    call->tsfn.Release();
    call->release_js();
    call->deferred.Reject(Napi::Error::New(env, e.what()).Value());
  }
  return promise;
}

// ---- JobHost ----

JobHost::JobHost(Napi::Env env, int threads, std::function<void()> cancel, std::string closed_message)
    : env_(env), closed_message_(std::move(closed_message)) {
  install_exit_handler();
  try {
    worker_ = std::make_unique<Worker>(threads, std::move(cancel));
  } catch (const std::system_error& e) {
    throw Napi::Error::New(env, std::string("cannot start a worker thread: ") + e.what());
  }
  napi_add_env_cleanup_hook(env_, &JobHost::CleanupHook, this);
}

JobHost::~JobHost() {
  napi_remove_env_cleanup_hook(env_, &JobHost::CleanupHook, this);
  stop_now();
}

// Env teardown (worker_threads, or the end of a normal exit): cancel, then join within a bound.
void JobHost::CleanupHook(void* self) { static_cast<JobHost*>(self)->stop_now(); }

void JobHost::stop_now() {
  if (!worker_) return;
  if (!worker_->shutdown(std::chrono::seconds(10))) {
    (void)worker_.release();  // still running (a collective): leak it rather than free it under the thread
    return;
  }
  worker_.reset();
}

void JobHost::check_live(Napi::Env env) const {
  if (!live()) throw Napi::Error::New(env, closed_message_);
}

Napi::Promise JobHost::run(Napi::Env env, Napi::Value self, std::vector<Napi::Value> keep, Job work,
                           std::function<void()> js_cleanup) {
  if (!live()) {
    if (js_cleanup) js_cleanup();
    throw Napi::Error::New(env, closed_message_);
  }
  keep.push_back(self);
  return run_async(env, *worker_, JobSpec{std::move(keep), std::move(js_cleanup), false}, std::move(work));
}

Napi::Promise JobHost::close(Napi::Env env, Napi::Value self, std::function<void()> last) {
  if (!live()) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    return d.Promise();
  }
  closing_ = true;
  return run_async(env, *worker_, JobSpec{{self}, nullptr, true}, [last = std::move(last)](JobContext&) -> JsResult {
    try {
      if (last) last();
    } catch (...) {
      // Freeing must not reject: close() promises are commonly not awaited.
    }
    return nullptr;
  });
}

}  // namespace cifake
