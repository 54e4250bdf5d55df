// One long-lived std::thread per session runs every job of that session in order. A dedicated
// thread (rather than AsyncWorkers on the libuv pool) keeps one OpenMP thread team warm across
// epochs; a new OpenMP master per call lost 25-30% of the speed. Results come back to JS through
// a thread-safe function, so the event loop is never blocked.
#pragma once

#include <napi.h>

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
  explicit Worker(int threads);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void post(std::function<void()> job);
  // Finishes the job in progress, lets queued jobs reject themselves, and joins the thread.
  void stop();
  bool stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

 private:
  void run(int threads);
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

// What a job hands back to the JS thread: a function that builds the resolved value there.
using JsResult = std::function<Napi::Value(Napi::Env)>;

// Runs `work` on `worker` and returns a promise settled with its result on the JS thread.
// Exceptions from `work` (std::exception, c10::Error) reject the promise with their message.
// `keep_alive` (the calling JS object, input buffers the job reads) stays referenced until the
// promise settles, so `work` may read those buffers without copying them first.
Napi::Promise run_async(Napi::Env env, Worker& worker, const std::vector<Napi::Value>& keep_alive,
                        std::function<JsResult()> work);

// Message of the exception in flight, without libtorch's C++ backtrace.
std::string current_exception_message();

}  // namespace cifake
