#pragma once
/// @file
/// Checkpoint files of the example trainers: a payload archive (what the trainer stores) wrapped with a
/// 64-bit FNV-1a checksum of its bytes, written atomically and verified on load; the twin's masks in
/// `ohem::MaskSet`'s own file format; and a check of a module's parameter shapes against an archive
/// before loading it (LibTorch's `Module::load` resizes a parameter to whatever the file holds); and a
/// whole model's starting weights from a checkpoint or a TorchScript file (`--init-from`).

#include "files.hpp"

#include <ohem/masks.hpp>

#include <torch/script.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Returns the 64-bit FNV-1a hash of `n` bytes.
inline uint64_t fnv1a64(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// The version of the checkpoint layout (`save_checked`).
inline constexpr int64_t kCheckpointFormat = 2;

/// Writes `payload` to `path` atomically and synced to disk, wrapped as {format, payload bytes, FNV-1a of
/// the bytes}. Throws naming `path` and the bytes needed and available if the disk is full; the file
/// at `path` is then the previous one and no temporary is left.
inline void save_checked(torch::serialize::OutputArchive& payload, const std::string& path) {
  std::ostringstream bytes;
  payload.save_to(bytes);
  std::string b = bytes.str();
  torch::serialize::OutputArchive outer;
  outer.write("ohem_checkpoint_format", c10::IValue(kCheckpointFormat));
  outer.write("payload", torch::from_blob(b.data(), {static_cast<int64_t>(b.size())}, torch::kUInt8));
  const uint64_t h = fnv1a64(b.data(), b.size());
  int64_t stored = 0;
  std::memcpy(&stored, &h, sizeof h);
  outer.write("payload_fnv1a64", c10::IValue(stored));
  // Serialised in memory first: LibTorch's file writer throws from its destructor when a write fails
  // (a full disk), which ends the process; the bytes are then written with checked writes, synced and
  // renamed (a full disk is an error naming the path and the space; the previous checkpoint stays).
  std::ostringstream file;
  outer.save_to(file);
  atomic_write_text(path, file.str(), AtomicWriteOptions().sync(true));
}

/// Reads a file written by `save_checked` into `payload` after verifying its checksum. Throws naming
/// the file if it is missing, unreadable, not a checkpoint of this layout, or corrupted.
inline void load_checked(torch::serialize::InputArchive& payload, const std::string& path) {
  TORCH_CHECK(std::filesystem::is_regular_file(path), "checkpoint \"", path, "\" does not exist");
  torch::serialize::InputArchive outer;
  try {
    outer.load_from(path);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot read checkpoint \"", path, "\" (damaged?): ", e.what_without_backtrace());
  }
  c10::IValue format, stored;
  TORCH_CHECK(outer.try_read("ohem_checkpoint_format", format) && format.isInt(), "\"", path,
              "\" is not a checkpoint of the example trainers");
  TORCH_CHECK(format.toInt() == kCheckpointFormat, "checkpoint \"", path, "\" has layout ", format.toInt(),
              "; this trainer reads layout ", kCheckpointFormat);
  torch::Tensor bytes;
  TORCH_CHECK(outer.try_read("payload", bytes) && outer.try_read("payload_fnv1a64", stored) &&
                  stored.isInt() && bytes.scalar_type() == torch::kUInt8 && bytes.dim() == 1,
              "checkpoint \"", path, "\" lacks its payload or checksum");
  bytes = bytes.contiguous();
  const uint64_t h = fnv1a64(bytes.data_ptr(), static_cast<size_t>(bytes.numel()));
  int64_t want = stored.toInt();
  uint64_t expected = 0;
  std::memcpy(&expected, &want, sizeof expected);
  TORCH_CHECK(h == expected, "checkpoint \"", path, "\" is corrupted: checksum ", h, " of its payload, ",
              expected, " written with it");
  try {
    // Onto the CPU whatever device wrote it (a trainer moves what it restores to its --device).
    payload.load_from(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel()),
                      torch::Device(torch::kCPU));
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot read the payload of checkpoint \"", path, "\": ", e.what_without_backtrace());
  }
}

/// Reads the entry `key` of a checkpoint's payload into `value` (a tensor, an `IValue` or a nested
/// archive). Throws naming the checkpoint file `path` and the entry if the payload lacks it.
///
/// Example: `read_entry(payload, "optimizer", opt, "runs/a/checkpoint.pt");`
template <typename T>
void read_entry(torch::serialize::InputArchive& payload, const std::string& key, T& value,
                const std::string& path) {
  bool found = false;
  try {
    found = payload.try_read(key, value);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "checkpoint \"", path, "\": cannot read the entry \"", key,
                "\": ", e.what_without_backtrace());
  }
  TORCH_CHECK(found, "checkpoint \"", path, "\" lacks the entry \"", key,
              "\" (written by another program, or damaged)");
}

/// Reads the integer entry `key` (see `read_entry`); throws naming the file and entry if it is missing
/// or not an integer.
inline int64_t read_int_entry(torch::serialize::InputArchive& payload, const std::string& key,
                              const std::string& path) {
  c10::IValue v;
  read_entry(payload, key, v, path);
  TORCH_CHECK(v.isInt(), "checkpoint \"", path, "\": the entry \"", key, "\" is a ", v.tagKind(),
              ", expected an integer");
  return v.toInt();
}

/// Returns the bytes of `masks` in `ohem::MaskSet`'s own format (`MaskSet::save(std::ostream&)`), as a
/// uint8 tensor to store in a checkpoint archive.
inline torch::Tensor mask_bytes(const ohem::MaskSet& masks) {
  std::ostringstream out;
  masks.save(out);
  const std::string b = out.str();
  return torch::from_blob(const_cast<char*>(b.data()), {static_cast<int64_t>(b.size())}, torch::kUInt8)
      .clone();
}

/// Reads masks from bytes written by `mask_bytes`; `source` names them in messages (e.g. the
/// checkpoint). Throws naming `source` if the bytes are not a uint8 vector or not a valid mask payload.
inline ohem::MaskSet masks_from_bytes(const torch::Tensor& bytes, const std::string& source) {
  TORCH_CHECK(bytes.defined() && bytes.scalar_type() == torch::kUInt8 && bytes.dim() == 1, source,
              ": the masks are not stored as bytes (expected a 1-D uint8 tensor)");
  const torch::Tensor b = bytes.contiguous();
  std::istringstream in(std::string(static_cast<const char*>(b.data_ptr()), static_cast<size_t>(b.numel())));
  return ohem::MaskSet::load(in, source);
}

/// Compares the parameters and buffers of `module` (and its children, recursively) with those saved in
/// `archive` by `Module::save`; returns one line per missing tensor or differing shape.
inline std::vector<std::string> shape_differences(torch::nn::Module& module,
                                                  torch::serialize::InputArchive& archive,
                                                  const std::string& prefix = {}) {
  std::vector<std::string> out;
  auto check = [&](const std::string& name, const torch::Tensor& mine, bool buffer) {
    torch::Tensor saved;
    if (!archive.try_read(name, saved, buffer)) {
      out.push_back(prefix + name + ": not in the checkpoint");
    } else if (saved.sizes() != mine.sizes()) {
      std::ostringstream s;
      s << prefix << name << ": checkpoint " << saved.sizes() << ", model " << mine.sizes();
      out.push_back(s.str());
    }
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) check(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) check(b.key(), b.value(), true);
  for (const auto& c : module.named_children()) {
    torch::serialize::InputArchive child;
    if (!archive.try_read(c.key(), child)) {
      out.push_back(prefix + c.key() + ": not in the checkpoint");
      continue;
    }
    for (auto& line : shape_differences(*c.value(), child, prefix + c.key() + "."))
      out.push_back(std::move(line));
  }
  return out;
}

/// Loads `archive` (saved by `Module::save`) into `module` after checking that every parameter and
/// buffer is there with the module's shape; otherwise throws "<context> does not match the model:" and
/// one line per difference (`shape_differences`).
///
/// Example: `load_matching(*net, model_archive, "checkpoint \"runs/a/checkpoint.pt\"");`
inline void load_matching(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                          const std::string& context) {
  const std::vector<std::string> shapes = shape_differences(module, archive);
  if (!shapes.empty()) {
    std::string lines;
    for (const auto& d : shapes) lines += "\n  " + d;
    TORCH_CHECK(false, context, " does not match the model:", lines);
  }
  module.load(archive);
}

/// Loads a whole model's starting weights (`--init-from`) from `path`: a trainer checkpoint (its "model"
/// entry, shapes checked first) or a TorchScript file whose parameters and buffers carry the model's
/// names and shapes (every tensor of the model must be there, and nothing else). Returns the number of
/// tensors loaded. Throws naming the file and what differs.
///
/// Example: `load_model_weights(*net, "runs/pretrain/checkpoint.pt");`
inline int64_t load_model_weights(torch::nn::Module& module, const std::string& path) {
  TORCH_CHECK(std::filesystem::is_regular_file(path), "--init-from: no file \"", path, "\"");
  int64_t tensors = 0;
  for (const auto& p : module.named_parameters()) tensors += p.value().defined() ? 1 : 0;
  for (const auto& b : module.named_buffers()) tensors += b.value().defined() ? 1 : 0;
  std::string as_checkpoint;
  {
    torch::serialize::InputArchive payload;
    try {
      load_checked(payload, path);
    } catch (const c10::Error& e) {
      as_checkpoint = e.what_without_backtrace();
    }
    if (as_checkpoint.empty()) {
      torch::serialize::InputArchive model;
      read_entry(payload, "model", model, path);
      load_matching(module, model, "--init-from: checkpoint \"" + path + "\"");
      return tensors;
    }
  }
  torch::jit::Module script;
  try {
    script = torch::jit::load(path);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "--init-from: \"", path, "\" is neither a trainer checkpoint (", as_checkpoint,
                ") nor a TorchScript file (", e.what_without_backtrace(), ")");
  }
  std::map<std::string, torch::Tensor> source;
  for (const auto& p : script.named_parameters(true)) source[p.name] = p.value;
  for (const auto& b : script.named_buffers(true)) source[b.name] = b.value;
  std::vector<std::string> problems;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (destination, source)
  auto want = [&](const std::string& name, const torch::Tensor& dst) {
    if (!dst.defined()) return;
    const auto it = source.find(name);
    if (it == source.end()) {
      problems.push_back(name + ": not in the file");
    } else if (it->second.sizes() != dst.sizes()) {
      std::ostringstream s;
      s << name << ": file " << it->second.sizes() << ", model " << dst.sizes();
      problems.push_back(s.str());
    } else {
      copies.emplace_back(dst, it->second);
    }
    source.erase(name);
  };
  for (const auto& p : module.named_parameters()) want(p.key(), p.value());
  for (const auto& b : module.named_buffers()) want(b.key(), b.value());
  for (const auto& extra : source) problems.push_back(extra.first + ": in the file, not in the model");
  if (!problems.empty()) {
    std::string lines;
    for (size_t i = 0; i < problems.size() && i < 10; ++i) lines += "\n  " + problems[i];
    if (problems.size() > 10) lines += fmt::format("\n  ... and {} more", problems.size() - 10);
    TORCH_CHECK(false, "--init-from: TorchScript file \"", path, "\" does not match the model:", lines);
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.to(dst.device(), dst.scalar_type()));
  return static_cast<int64_t>(copies.size());
}

}  // namespace ohem_examples
