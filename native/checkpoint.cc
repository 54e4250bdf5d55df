#include "checkpoint.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace cifake {

namespace {

constexpr int64_t kCheckpointFormat = 1;
constexpr const char* kChecksumKey = "cifake_checksum";

// FNV-1a over 64-bit words (then the tail bytes): fast, and any changed byte changes the hash.
struct Hasher {
  uint64_t h = 0xcbf29ce484222325ULL;
  void bytes(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 0x100000001b3ULL;
      h ^= h >> 29;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  }
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
};

void hash_ivalue(Hasher& h, const c10::IValue& v);

// Every entry of an archive but the checksum, by sorted key, nested archives recursively.
void hash_archive(Hasher& h, torch::serialize::InputArchive& archive) {
  auto keys = archive.keys();
  std::sort(keys.begin(), keys.end());
  for (const auto& key : keys) {
    if (key == kChecksumKey) continue;
    h.str(key);
    torch::serialize::InputArchive child;
    if (archive.try_read(key, child)) {
      h.u64(1);
      hash_archive(h, child);
      continue;
    }
    c10::IValue v;
    if (archive.try_read(key, v)) hash_ivalue(h, v);
  }
}

void hash_ivalue(Hasher& h, const c10::IValue& v) {
  h.str(v.tagKind());
  if (v.isTensor()) {
    auto t = v.toTensor().detach().to(torch::kCPU).contiguous();
    h.str(std::string(c10::toString(t.scalar_type())));
    for (auto d : t.sizes()) h.u64(static_cast<uint64_t>(d));
    h.bytes(t.data_ptr(), t.numel() * t.element_size());
  } else if (v.isInt()) {
    h.u64(static_cast<uint64_t>(v.toInt()));
  } else if (v.isDouble()) {
    double d = v.toDouble();
    h.bytes(&d, sizeof d);
  } else if (v.isBool()) {
    h.u64(v.toBool() ? 1 : 0);
  } else if (v.isString()) {
    h.str(v.toStringRef());
  } else if (v.isList()) {
    auto l = v.toListRef();
    h.u64(l.size());
    for (const auto& e : l) hash_ivalue(h, e);
  } else if (v.isTuple()) {
    const auto& e = v.toTupleRef().elements();
    h.u64(e.size());
    for (const auto& x : e) hash_ivalue(h, x);
  }
}

uint64_t checksum(torch::serialize::InputArchive& archive) {
  Hasher h;
  hash_archive(h, archive);
  return h.h;
}

// Module::save nests one archive per submodule: "block1.conv.weight" lives in block1 / conv.
bool read_nested(torch::serialize::InputArchive& archive, const std::string& name, torch::Tensor& t, bool is_buffer) {
  const auto dot = name.find('.');
  if (dot == std::string::npos) return archive.try_read(name, t, is_buffer);
  torch::serialize::InputArchive child;
  if (!archive.try_read(name.substr(0, dot), child)) return false;
  return read_nested(child, name.substr(dot + 1), t, is_buffer);
}

void write_atomically(torch::serialize::OutputArchive& archive, const std::string& path) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    archive.save_to(tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("save: cannot rename " + tmp + " to " + path);
  }
}

}  // namespace

void save_checkpoint(const std::string& path, const std::string& meta, const torch::nn::Module& model,
                     const torch::optim::Optimizer& optimizer, const WeightAverage* ema) {
  torch::serialize::OutputArchive archive, model_archive, optim_archive, ema_archive;
  archive.write("cifake_format", c10::IValue(kCheckpointFormat));
  archive.write("cifake_meta", c10::IValue(meta));
  model.save(model_archive);
  archive.write("model", model_archive);
  optimizer.save(optim_archive);
  archive.write("optimizer", optim_archive);
  if (ema && !ema->empty()) {
    ema->write(ema_archive);
    archive.write("ema", ema_archive);
  }
  // The checksum is taken over the archive as it reads back, exactly what open_checkpoint sees.
  std::ostringstream bytes;
  archive.save_to(bytes);
  const std::string buf = bytes.str();
  torch::serialize::InputArchive reread;
  reread.load_from(buf.data(), buf.size(), torch::Device("cpu"));
  archive.write(kChecksumKey, c10::IValue(static_cast<int64_t>(checksum(reread))));
  write_atomically(archive, path);
}

// Checks the CRC-32 of every record of the zip container against its central-directory entry before
// the TorchScript importer parses any of it: libtorch's miniz is built without CRC checks, and the
// importer can crash on corrupt code records (found by test/native-fuzz.test.ts). Checkpoints are
// stored uncompressed (deflated records are left to miniz); an archive with ZIP64 fields is left
// to libtorch's own checks. Returns the file's bytes, which the archive is then loaded from (one read).
static uint32_t crc32_of(const uint8_t* p, size_t n) {
  static const std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static std::vector<uint8_t> read_verified_container(const std::string& path) {
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(path + ": not a readable cifake-torch checkpoint (truncated, corrupt or another format): " + why);
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open the file");
  std::vector<uint8_t> f((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto u16 = [&](size_t at) -> uint32_t { return at + 2 <= f.size() ? f[at] | (f[at + 1] << 8) : 0; };
  auto u32 = [&](size_t at) -> uint32_t { return at + 4 <= f.size() ? u16(at) | (u16(at + 2) << 16) : 0; };
  if (f.size() < 22) fail("too short for a zip archive");
  size_t eocd = f.size() - 22;
  const size_t stop = f.size() > 22 + 65535 ? f.size() - 22 - 65535 : 0;
  while (u32(eocd) != 0x06054b50u) {
    if (eocd == stop) fail("no zip end record");
    --eocd;
  }
  const uint32_t entries = u16(eocd + 10), cd_offset = u32(eocd + 16);
  if (entries == 0xFFFF || cd_offset == 0xFFFFFFFFu) return f;  // ZIP64
  size_t at = cd_offset;
  for (uint32_t i = 0; i < entries; ++i) {
    if (u32(at) != 0x02014b50u) fail("bad central directory entry " + std::to_string(i));
    const uint32_t method = u16(at + 10), crc = u32(at + 16), csize = u32(at + 20), usize = u32(at + 24);
    const uint32_t n = u16(at + 28), e = u16(at + 30), c = u16(at + 32), local = u32(at + 42);
    if (csize == 0xFFFFFFFFu || usize == 0xFFFFFFFFu || local == 0xFFFFFFFFu) return f;  // ZIP64
    if (u32(local) != 0x04034b50u) fail("bad local header of record " + std::to_string(i));
    const size_t data = size_t(local) + 30 + u16(local + 26) + u16(local + 28);
    if (data + csize > f.size()) fail("record " + std::to_string(i) + " runs past the end of the file");
    // Stored records (all of libtorch's tensors and code) are checked; a deflated one is left to miniz.
    if (method == 0 && (csize != usize || crc32_of(f.data() + data, csize) != crc))
      throw std::runtime_error(path + ": checkpoint is corrupt (checksum mismatch: the CRC-32 of record " + std::to_string(i) +
                               " differs, the file changed after it was written; restore it from a copy or retrain)");
    at += 46 + n + e + c;
  }
  return f;
}

void open_checkpoint(const std::string& path, const torch::Device& device, OpenCheckpoint& out) {
  auto& archive = out.archive;
  const auto bytes = read_verified_container(path);
  try {
    archive.load_from(reinterpret_cast<const char*>(bytes.data()), bytes.size(), device);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a readable cifake-torch checkpoint (truncated, corrupt or another format): " +
                             e.what_without_backtrace());
  }
  c10::IValue format, m, sum;
  if (!archive.try_read("cifake_format", format) || !format.isInt() || !archive.try_read("cifake_meta", m) ||
      !m.isString())
    throw std::runtime_error(path + ": a libtorch archive, but not a cifake-torch checkpoint");
  if (format.toInt() > kCheckpointFormat)
    throw std::runtime_error(path + ": checkpoint format " + std::to_string(format.toInt()) +
                             " is newer than this cifake-torch supports (" + std::to_string(kCheckpointFormat) + ")");
  if (archive.try_read(kChecksumKey, sum)) {
    uint64_t actual = 0;
    try {
      actual = checksum(archive);
    } catch (const c10::Error& e) {
      throw std::runtime_error(path + ": checkpoint is corrupt (its entries cannot be read: " +
                               e.what_without_backtrace() + ")");
    }
    if (!sum.isInt() || static_cast<uint64_t>(sum.toInt()) != actual)
      throw std::runtime_error(path + ": checkpoint is corrupt (checksum mismatch: the file changed after it was "
                                      "written; restore it from a copy or retrain)");
  }
  out.meta = m.toStringRef();
}

std::string read_checkpoint_meta(const std::string& path) {
  OpenCheckpoint ckpt;
  open_checkpoint(path, torch::Device("cpu"), ckpt);
  return ckpt.meta;
}

void load_weights(const std::string& path, OpenCheckpoint& ckpt, torch::nn::Module& model,
                  torch::optim::Optimizer* optimizer, WeightAverage* ema) {
  torch::serialize::InputArchive model_archive;
  if (!ckpt.archive.try_read("model", model_archive)) throw std::runtime_error(path + ": checkpoint has no model weights");
  std::vector<std::pair<torch::Tensor, torch::Tensor>> pending;
  auto collect = [&](const std::string& name, torch::Tensor& target, bool is_buffer) {
    torch::Tensor t;
    if (!read_nested(model_archive, name, t, is_buffer))
      throw std::runtime_error(path + ": checkpoint lacks '" + name + "' (a different architecture?)");
    if (t.sizes() != target.sizes() || t.scalar_type() != target.scalar_type())
      throw std::runtime_error(path + ": '" + name + "' has shape " + c10::str(t.sizes()) + ", the model expects " +
                               c10::str(target.sizes()) + " (a different architecture?)");
    pending.emplace_back(target, t);
  };
  for (auto& p : model.named_parameters()) collect(p.key(), p.value(), false);
  for (auto& b : model.named_buffers()) collect(b.key(), b.value(), true);
  WeightAverage average;
  torch::serialize::InputArchive ema_archive;
  const bool has_ema = ema && ckpt.archive.try_read("ema", ema_archive);
  if (has_ema) average.read(ema_archive, model, path);
  {
    torch::NoGradGuard no_grad;
    for (auto& [target, t] : pending) target.copy_(t);
  }
  if (ema) *ema = has_ema ? std::move(average) : WeightAverage();
  if (!optimizer) return;
  torch::serialize::InputArchive optim_archive;
  if (!ckpt.archive.try_read("optimizer", optim_archive)) return;
  try {
    optimizer->load(optim_archive);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": optimizer state does not match this optimizer: " + e.what_without_backtrace());
  }
}

}  // namespace cifake
