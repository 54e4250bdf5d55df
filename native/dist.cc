#include "dist.h"

#include <stdexcept>
#include <thread>

#ifdef CIFAKE_WITH_C10D
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace cifake {

namespace {

using Clock = std::chrono::steady_clock;

std::string where(const DistOptions& o) {
  return "rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ", rendezvous " + o.master_addr +
         ":" + std::to_string(o.master_port);
}

std::string message_of(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

bool is_loopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

}  // namespace

#ifdef CIFAKE_WITH_C10D

bool dist_available() { return true; }

struct DistGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

DistGroup::DistGroup(const DistOptions& o) : impl_(std::make_unique<Impl>()), opts_(o) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    throw std::invalid_argument("distributed: rank " + std::to_string(o.rank) + " is outside world size " +
                                std::to_string(o.world_size));
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  const double timeout_s = o.timeout_ms / 1000.0;
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.master_port);
  so.isServer = o.rank == 0;
  so.numWorkers = static_cast<std::size_t>(o.world_size);
  so.waitWorkers = false;  // we wait below, with a message that says how many ranks came
  so.timeout = timeout;
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    throw std::runtime_error("distributed: " + std::string(o.rank == 0 ? "cannot host" : "cannot reach") +
                             " the rendezvous store (" + where(o) + ") within " + c10::str(timeout_s) +
                             " s: " + message_of(e));
  }

  // Every rank counts itself in, then waits for the others: a missing rank is named, not a hang.
  const auto deadline = Clock::now() + timeout;
  int64_t joined = 0;
  try {
    joined = impl_->store->add("cifake/joined", 1);
    while (joined < o.world_size) {
      if (Clock::now() > deadline)
        throw std::runtime_error("distributed: rendezvous timed out after " + c10::str(timeout_s) + " s: " +
                                 std::to_string(joined) + " of " + std::to_string(o.world_size) +
                                 " ranks joined (" + where(o) + "); did every rank start, with the same MASTER_ADDR, "
                                 "MASTER_PORT and WORLD_SIZE?");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      joined = impl_->store->add("cifake/joined", 0);
    }
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).rfind("distributed:", 0) == 0) throw;
    throw std::runtime_error("distributed: rendezvous failed (" + where(o) + "): " + message_of(e));
  }

  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->threads = 1;  // collectives here are issued one at a time; spare threads only compete for cores
  try {
    if (!o.ifname.empty())
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(o.ifname));
    else if (is_loopback(o.master_addr))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, o.rank, o.world_size, options);
  } catch (const std::exception& e) {
    throw std::runtime_error("distributed: cannot connect the Gloo process group (" + where(o) + "): " + message_of(e));
  }
}

DistGroup::~DistGroup() = default;

namespace {

using Works = std::vector<c10::intrusive_ptr<c10d::Work>>;

// Starts collectives (they run concurrently) and waits for all; failures name the operation and this rank.
template <typename Start>
void run_collective(const char* what, const DistOptions& o, double& comm_seconds, Start&& start) {
  const auto t0 = Clock::now();
  try {
    Works works = start();
    for (auto& w : works) w->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("distributed: ") + what + " failed on " + where(o) +
                             " (a peer rank exited, was killed or stopped answering within the timeout): " +
                             message_of(e));
  }
  comm_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

void DistGroup::allreduce_sum(std::vector<torch::Tensor>& tensors) {
  run_collective("gradient all-reduce", opts_, comm_seconds_, [&] {
    Works works;
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one{t};
      works.push_back(impl_->pg->allreduce(one, c10d::AllreduceOptions{}));
    }
    return works;
  });
}

void DistGroup::broadcast(torch::Tensor& t, int root) {
  std::vector<torch::Tensor> one{t};
  c10d::BroadcastOptions bo;
  bo.rootRank = root;
  run_collective("broadcast", opts_, comm_seconds_, [&] { return Works{impl_->pg->broadcast(one, bo)}; });
}

std::vector<uint8_t> DistGroup::broadcast_bytes(const std::vector<uint8_t>& bytes, int root) {
  auto len = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong);
  broadcast(len, root);
  const int64_t n = len.item<int64_t>();
  auto buf = torch::empty({std::max<int64_t>(n, 1)}, torch::kUInt8);
  if (rank() == root && n > 0) std::memcpy(buf.data_ptr<uint8_t>(), bytes.data(), n);
  if (n > 0) broadcast(buf, root);
  return std::vector<uint8_t>(buf.data_ptr<uint8_t>(), buf.data_ptr<uint8_t>() + n);
}

std::vector<float> DistGroup::allgather_floats(const std::vector<float>& local) {
  auto counts = allreduce_doubles([&] {
    std::vector<double> c(size(), 0.0);
    c[rank()] = static_cast<double>(local.size());
    return c;
  }());
  int64_t longest = 1;
  for (double c : counts) longest = std::max<int64_t>(longest, static_cast<int64_t>(c));
  auto input = torch::zeros({longest}, torch::kFloat);
  if (!local.empty()) std::memcpy(input.data_ptr<float>(), local.data(), local.size() * sizeof(float));
  std::vector<std::vector<torch::Tensor>> outputs(1);
  for (int r = 0; r < size(); ++r) outputs[0].push_back(torch::empty({longest}, torch::kFloat));
  std::vector<torch::Tensor> inputs{input};
  run_collective("all-gather", opts_, comm_seconds_, [&] { return Works{impl_->pg->allgather(outputs, inputs)}; });
  std::vector<float> out;
  for (int r = 0; r < size(); ++r) {
    const auto* p = outputs[0][r].data_ptr<float>();
    out.insert(out.end(), p, p + static_cast<int64_t>(counts[r]));
  }
  return out;
}

std::vector<double> DistGroup::allreduce_doubles(const std::vector<double>& local, bool max) {
  auto t = torch::tensor(local, torch::kDouble);
  std::vector<torch::Tensor> one{t};
  c10d::AllreduceOptions ao;
  ao.reduceOp = max ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
  run_collective("all-reduce", opts_, comm_seconds_, [&] { return Works{impl_->pg->allreduce(one, ao)}; });
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void DistGroup::barrier() {
  c10d::BarrierOptions bo;
  bo.timeout = std::chrono::milliseconds(opts_.timeout_ms);
  run_collective("barrier", opts_, comm_seconds_, [&] { return Works{impl_->pg->barrier(bo)}; });
}

#else  // no c10d in this build

bool dist_available() { return false; }

struct DistGroup::Impl {};

DistGroup::DistGroup(const DistOptions& o) : opts_(o) {
  throw std::runtime_error(
      "distributed: this build of the addon has no c10d/Gloo support (libtorch's c10d headers or the gloo headers "
      "were not found at build time; on Debian/Ubuntu: apt-get install libgloo-dev, then npm run build:native)");
}
DistGroup::~DistGroup() = default;
void DistGroup::allreduce_sum(std::vector<torch::Tensor>&) {}
void DistGroup::broadcast(torch::Tensor&, int) {}
std::vector<uint8_t> DistGroup::broadcast_bytes(const std::vector<uint8_t>& b, int) { return b; }
std::vector<float> DistGroup::allgather_floats(const std::vector<float>& l) { return l; }
std::vector<double> DistGroup::allreduce_doubles(const std::vector<double>& l, bool) { return l; }
void DistGroup::barrier() {}

#endif

}  // namespace cifake
