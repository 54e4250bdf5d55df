// One long-lived std::thread per session runs every job of that session in order. A dedicated
// thread (rather than AsyncWorkers on the libuv pool) keeps one OpenMP thread team warm across
// epochs; a new OpenMP master per call lost 25-30% of the speed. Results come back to JS through
// a thread-safe function, so the event loop is never blocked.
//
// Shutdown: every live worker is in one registry. At process exit (process.exit(), an uncaught
// exception) Node runs no env cleanup hooks; it calls exit(), whose static destructors free
// libtorch and oneDNN state while a worker may still be inside an epoch (a glibc double free, or
// a SIGSEGV in oneDNN). An atexit handler is not early enough: oneDNN's caches are function-local
// statics created on first use, so their destructors run before a handler registered at module
// init. So src/native.ts calls shutdownAll() from the main thread's process 'exit' event, which
// cancels every job and joins every worker before exit() starts; the atexit handler remains as a
// backstop, and env cleanup hooks do the same for worker_threads teardown.
#pragma once

#include <napi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cifake {

class Worker {
 public:
  // cancel: called (from any thread) when the worker is asked to stop, to cut the running job short.
  explicit Worker(int threads, std::function<void()> cancel = nullptr);
  ~Worker();  // request_stop() and join
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void post(std::function<void()> job);  // throws once stopping
  // Queues `job` as the last one: later posts throw, and jobs queued before it reject themselves.
  void post_last(std::function<void()> job);
  // No new jobs; queued jobs reject themselves; the running one is cancelled.
  void request_stop();
  bool stopping();
  // request_stop(), then waits up to `timeout` for the thread to finish and joins it; false when
  // it did not finish in time (it is then detached, and the caller must leak this object).
  bool shutdown(std::chrono::milliseconds timeout);

  // Stops every live worker of the process within `timeout` in total (the atexit handler).
  static bool shutdown_all(std::chrono::milliseconds timeout);

 private:
  void run(int threads);
  bool wait_finished(std::chrono::steady_clock::time_point deadline);
  std::function<void()> cancel_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  bool finished_ = false;
  std::mutex join_mutex_;
  std::thread thread_;
};

// True once the process is exiting: jobs then finish without calling back into JS.
bool process_exiting();
// Marks the process as exiting and stops every worker (bounded); the 'exit' event's handler.
bool shutdown_for_exit();
// Installs the atexit handler described above (once; at module init).
void install_exit_handler();

// What a job hands back to the JS thread: a function that builds the resolved value there.
using JsResult = std::function<Napi::Value(Napi::Env)>;

// What a running job may do besides computing: queue calls on the JS thread. They run in order,
// and all before the job's own result is settled.
class JobContext {
 public:
  explicit JobContext(Napi::ThreadSafeFunction& tsfn) : tsfn_(tsfn) {}
  bool call_js(std::function<void(Napi::Env)> fn);

 private:
  Napi::ThreadSafeFunction& tsfn_;
};

using Job = std::function<JsResult(JobContext&)>;

struct JobSpec {
  std::vector<Napi::Value> keep_alive;  // referenced until the promise settles (the JS object, inputs)
  std::function<void()> js_cleanup;     // runs on the JS thread when the promise settles
  bool last = false;                    // Worker::post_last: runs even though the worker is stopping
};

// Runs `work` on `worker` and returns a promise settled with its result on the JS thread.
// Exceptions from `work` (std::exception, c10::Error) reject the promise with their message; a
// Napi::Error thrown by the JsResult rejects it with that error's value.
Napi::Promise run_async(Napi::Env env, Worker& worker, JobSpec spec, Job work);

// Message of the exception in flight, without libtorch's C++ backtrace.
std::string current_exception_message();

// Runs a binding body; any C++ exception other than Napi::Error becomes a JS Error with its
// message (without libtorch's backtrace), so nothing escapes to terminate the process.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw Napi::Error::New(env, current_exception_message());
  }
}

// The part every JS class with a worker thread shares (Session, DistGroup): the worker, the env
// cleanup hook, the disposed check, running jobs with the JS object kept alive, and an
// asynchronous close that never blocks the JS thread.
class JobHost {
 public:
  JobHost(Napi::Env env, int threads, std::function<void()> cancel, std::string closed_message);
  ~JobHost();
  JobHost(const JobHost&) = delete;
  JobHost& operator=(const JobHost&) = delete;

  bool live() const { return worker_ && !closing_; }
  void check_live(Napi::Env env) const;  // throws closed_message once closed
  Napi::Promise run(Napi::Env env, Napi::Value self, std::vector<Napi::Value> keep, Job work,
                    std::function<void()> js_cleanup = nullptr);
  // Stops taking jobs, cancels the running one, then runs `last` on the worker thread (freeing what
  // it holds there); the promise resolves when that is done and never rejects. Idempotent.
  Napi::Promise close(Napi::Env env, Napi::Value self, std::function<void()> last);

 private:
  static void CleanupHook(void* self);
  void stop_now();
  napi_env env_;
  std::unique_ptr<Worker> worker_;
  bool closing_ = false;
  std::string closed_message_;
};

}  // namespace cifake
