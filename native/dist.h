// One process's membership in a data-parallel job on PyTorch's c10d: rendezvous through a
// TCPStore (rank 0 hosts it), collectives through ProcessGroupGloo. Every call blocks, so it runs
// on a worker thread; a peer that dies or never comes makes the call throw within the timeout.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace cifake {

struct DistOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int64_t timeout_ms = 300000;  // rendezvous and every collective
  std::string ifname;           // network interface for Gloo (GLOO_SOCKET_IFNAME); empty: by address
};

// True when this build has c10d with Gloo (libtorch's c10d headers and the gloo headers were found).
bool dist_available();

class DistGroup {
 public:
  explicit DistGroup(const DistOptions& opts);  // blocks until every rank has joined, or throws
  ~DistGroup();
  DistGroup(const DistGroup&) = delete;
  DistGroup& operator=(const DistGroup&) = delete;

  int rank() const { return opts_.rank; }
  int size() const { return opts_.world_size; }
  const DistOptions& options() const { return opts_; }

  // Sums each tensor in place across ranks; the tensors are reduced concurrently.
  void allreduce_sum(std::vector<torch::Tensor>& tensors);
  void broadcast(torch::Tensor& t, int root);
  std::vector<uint8_t> broadcast_bytes(const std::vector<uint8_t>& bytes, int root);
  // Each rank's vector, concatenated in rank order (lengths may differ between ranks).
  std::vector<float> allgather_floats(const std::vector<float>& local);
  std::vector<double> allreduce_doubles(const std::vector<double>& local, bool max = false);
  void barrier();

  // Seconds spent inside collectives since the last reset (the communication share of a step).
  double comm_seconds() const { return comm_seconds_; }
  void reset_comm_seconds() { comm_seconds_ = 0; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DistOptions opts_;
  double comm_seconds_ = 0;
};

}  // namespace cifake
