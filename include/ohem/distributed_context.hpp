#pragma once
/// @file
/// Part of ohem/distributed.hpp (include that one): the launcher's environment, the process group
/// (`DistributedContext`) and its collectives.

#include <ohem/detail/distributed_env.hpp>
#include <ohem/detail/distributed_reducer.hpp>
#include <ohem/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// Which c10d backend carries the collectives.
enum class DistributedBackend {
  /// NCCL when the build has it and the model is on CUDA (`DistributedOptions::device`), Gloo otherwise.
  Auto,
  /// Gloo: CPU tensors (TCP). Always available.
  Gloo,
  /// NCCL: CUDA tensors; needs a LibTorch built with NCCL and the macro USE_C10D_NCCL.
  NCCL,
};

/// Options of a `DistributedContext`.
///
/// Example: `DistributedOptions().timeout(std::chrono::seconds(60)).backend(DistributedBackend::Gloo)`
struct DistributedOptions {
  /// Gloo, NCCL or automatic (NCCL for a CUDA device when available).
  TORCH_ARG(DistributedBackend, backend) = DistributedBackend::Auto;
  /// How long to wait for the rendezvous (every rank joining) and for any one collective before failing
  /// with an error instead of hanging. torch.distributed's default is 30 min; ours is 5 min.
  TORCH_ARG(std::chrono::milliseconds, timeout) = std::chrono::minutes(5);
  /// The device the model lives on; a CUDA device selects NCCL under Auto. Default: the CPU.
  TORCH_ARG(torch::Device, device) = torch::Device(torch::kCPU);
};

/// The launcher's environment: the variables torchrun sets for every process.
struct DistributedEnv {
  /// MASTER_ADDR: host of rank 0's rendezvous store.
  std::string master_addr = "127.0.0.1";
  /// MASTER_PORT: its TCP port.
  int port = 29500;
  /// RANK: this process's index in [0, world_size).
  int rank = 0;
  /// WORLD_SIZE: the number of processes.
  int world_size = 1;
  /// LOCAL_RANK: index on this node (the CUDA device to use); RANK if unset.
  int local_rank = 0;
  /// True if the variables were found (false: a single process without a launcher).
  bool launched = false;

  /// Reads the variables from the process environment. None set: a single process (`launched` false).
  /// Some but not all of MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE set, a non-integer, RANK outside
  /// [0, WORLD_SIZE), a port outside [1, 65535]: throws naming the variable and its value.
  static DistributedEnv from_env() { return parse(detail::process_env()); }
  /// Same as `from_env` on a map of variables (tests, or a configuration file).
  static DistributedEnv from_map(std::map<std::string, std::string> vars) {
    return parse(detail::map_env(std::move(vars)));
  }

 private:
  static DistributedEnv parse(const detail::EnvLookup& lookup) {
    const char* required[] = {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"};
    std::map<std::string, std::string> v;
    std::string missing, present;
    for (const char* name : required) {
      std::string value;
      if (lookup(name, value)) {
        v[name] = value;
        present += present.empty() ? name : std::string(", ") + name;
      } else {
        missing += missing.empty() ? name : std::string(", ") + name;
      }
    }
    std::string local;
    const bool has_local = lookup("LOCAL_RANK", local);
    DistributedEnv env;
    if (present.empty()) {
      TORCH_CHECK(
          !has_local, "ohem::distributed: LOCAL_RANK=", local,
          " is set but none of MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE is; launch with torchrun or "
          "scripts/launch.sh, or unset LOCAL_RANK for a single process");
      return env;
    }
    TORCH_CHECK(
        missing.empty(), "ohem::distributed: environment variable(s) ", missing, " not set, but ", present,
        " are; a distributed run needs all of MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE (torchrun and "
        "scripts/launch.sh set them)");
    env.launched = true;
    env.master_addr = v["MASTER_ADDR"];
    TORCH_CHECK(!env.master_addr.empty(), "ohem::distributed: environment variable MASTER_ADDR is empty");
    const int64_t port = detail::parse_env_int("MASTER_PORT", v["MASTER_PORT"]);
    TORCH_CHECK(port >= 1 && port <= 65535, "ohem::distributed: MASTER_PORT must be in [1, 65535], got ",
                port);
    const int64_t world = detail::parse_env_int("WORLD_SIZE", v["WORLD_SIZE"]);
    TORCH_CHECK(world >= 1 && world <= (1 << 20), "ohem::distributed: WORLD_SIZE must be >= 1, got ", world);
    const int64_t rank = detail::parse_env_int("RANK", v["RANK"]);
    TORCH_CHECK(rank < world, "ohem::distributed: RANK must be in [0, WORLD_SIZE) = [0, ", world,
                "), got RANK=", rank);
    const int64_t lr = has_local ? detail::parse_env_int("LOCAL_RANK", local) : rank;
    TORCH_CHECK(lr <= rank, "ohem::distributed: LOCAL_RANK (", lr, ") cannot exceed RANK (", rank,
                "): the ranks of one node are a subset of all ranks");
    env.port = static_cast<int>(port);
    env.world_size = static_cast<int>(world);
    env.rank = static_cast<int>(rank);
    env.local_rank = static_cast<int>(lr);
    return env;
  }
};

/// Returns `[begin, end)` of rank `rank`'s contiguous share of `n` items split over `world_size` ranks
/// (sizes differ by at most one; the ranks' ranges concatenated in rank order are [0, n)). For sharded
/// evaluation: gather the predictions with `DistributedContext::all_gather_cat` and they are in
/// dataset order. Throws on a negative n or a rank outside [0, world_size).
inline std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world_size) {
  TORCH_CHECK(n >= 0, "ohem::shard_range: n must be >= 0, got ", n);
  TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "ohem::shard_range: rank ", rank,
              " outside [0, ", world_size, ")");
  const int64_t base = n / world_size, extra = n % world_size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

/// A process group for data-parallel training: a c10d `TCPStore` at MASTER_ADDR:MASTER_PORT (served by
/// rank 0) and a Gloo (CPU) or NCCL (CUDA) backend over it; or, without launcher variables, a single
/// process whose collectives do nothing. Copies share the same group.
///
/// Every collective must be called by every rank in the same order. A peer that exits or stalls makes
/// the others throw a c10::Error within `timeout`, never hang.
///
/// Example: `auto dist = ohem::DistributedContext::from_env(); if (dist.is_main()) std::puts("hello");`
class DistributedContext {
 public:
  /// A single process (rank 0 of 1).
  DistributedContext() : impl_(std::make_shared<Impl>()) {}

  /// Joins the process group described by the launcher's environment (see `DistributedEnv::from_env`),
  /// or makes a single-process context if no variable is set.
  static DistributedContext from_env(DistributedOptions options = {}) {
    return DistributedContext(DistributedEnv::from_env(), std::move(options));
  }

  /// Joins the group `env` describes: rank 0 starts the store (throws naming MASTER_PORT if the port is
  /// in use), every rank connects to it (throws naming MASTER_ADDR:MASTER_PORT if it cannot within the
  /// timeout), then the backend connects every pair of ranks. A launched context sets SIGPIPE to "ignore"
  /// unless the program handles it (Python's default), so that a peer that exits gives an error here.
  DistributedContext(DistributedEnv env, DistributedOptions options = {}) : impl_(std::make_shared<Impl>()) {
    Impl& s = *impl_;
    s.env = env;
    s.options = options;
    s.comm.rank = env.rank;
    s.comm.world_size = env.world_size;
    s.comm.timeout = options.timeout();
    if (!env.launched) return;
    // A peer that exits mid-collective must give this rank an error, not a silent death by SIGPIPE.
    detail::ignore_sigpipe();
    TORCH_CHECK(options.timeout().count() > 0, "ohem::DistributedOptions::timeout must be > 0, got ",
                options.timeout().count(), " ms");
    const std::string where = env.master_addr + ":" + std::to_string(env.port);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = options.timeout();
    try {
      s.store = detail::make_tcp_store(env.master_addr, so);  // libuv store, else the classic one
    } catch (const std::exception& e) {
      const std::string msg = e.what();
      if (env.rank == 0 &&
          (msg.find("in use") != std::string::npos || msg.find("bind") != std::string::npos)) {
        TORCH_CHECK(false,
                    "ohem::distributed: rank 0 cannot start the rendezvous store on MASTER_PORT=", env.port,
                    " (MASTER_ADDR=", env.master_addr,
                    "): the port is in use; pick a free port (scripts/launch.sh picks one). Cause: ", msg);
      }
      TORCH_CHECK(false, "ohem::distributed: rank ", env.rank, " of ", env.world_size,
                  " could not rendezvous at MASTER_ADDR:MASTER_PORT=", where, " within ",
                  options.timeout().count(),
                  " ms: the master is unreachable, or not every rank of WORLD_SIZE=", env.world_size,
                  " joined. Cause: ", msg);
    }
    const bool cuda = options.device().is_cuda();
    DistributedBackend backend = options.backend();
    if (backend == DistributedBackend::Auto)
      backend = cuda && nccl_available() ? DistributedBackend::NCCL : DistributedBackend::Gloo;
    try {
      if (backend == DistributedBackend::NCCL) {
#if defined(USE_C10D_NCCL)
        auto o = c10d::ProcessGroupNCCL::Options::create();
        o->timeout = options.timeout();
        s.comm.backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(s.store, env.rank, env.world_size, o);
        s.backend_name = "nccl";
#else
        TORCH_CHECK(false,
                    "ohem::distributed: DistributedBackend::NCCL requested, but this build has no NCCL "
                    "(a CUDA LibTorch, compiled with USE_C10D_NCCL defined)");
#endif
      } else {
        auto o = c10d::ProcessGroupGloo::Options::create(options.timeout());
        o->devices.push_back(gloo_device(env.master_addr));
        o->threads = 2;
        s.comm.backend = c10::make_intrusive<c10d::ProcessGroupGloo>(s.store, env.rank, env.world_size, o);
        s.backend_name = "gloo";
      }
    } catch (const c10::Error&) {
      throw;
    } catch (const std::exception& e) {
      TORCH_CHECK(false, "ohem::distributed: rank ", env.rank, " of ", env.world_size,
                  " could not connect the ", backend == DistributedBackend::NCCL ? "NCCL" : "Gloo",
                  " backend (store at ", where, "). Cause: ", e.what());
    }
  }

  /// Returns this process's rank in [0, world_size()).
  int rank() const {
    return impl_->env.rank;
  }
  /// Returns the number of processes.
  int world_size() const {
    return impl_->env.world_size;
  }
  /// Returns the rank on this node (LOCAL_RANK): the CUDA device index to use.
  int local_rank() const {
    return impl_->env.local_rank;
  }
  /// Returns true on rank 0, the process that prints, logs and writes files.
  bool is_main() const {
    return impl_->env.rank == 0;
  }
  /// Returns true if there is more than one process.
  bool distributed() const {
    return impl_->env.world_size > 1;
  }
  /// Returns the launcher environment it was built from.
  const DistributedEnv& env() const {
    return impl_->env;
  }
  /// Returns the options.
  const DistributedOptions& options() const {
    return impl_->options;
  }
  /// Returns "gloo", "nccl", or "none" for a single process.
  const std::string& backend_name() const {
    return impl_->backend_name;
  }
  /// Returns the c10d store (null for a single process).
  const c10::intrusive_ptr<c10d::Store>& store() const {
    return impl_->store;
  }
  /// Returns the c10d backend that runs the collectives (null for a single process).
  const c10::intrusive_ptr<DistributedBackendImpl>& backend() const {
    return impl_->comm.backend;
  }

  /// Blocks until every rank arrives (a collective); throws if a peer died or the timeout passed.
  void barrier() const {
    if (!distributed()) return;
    // An all-reduce rather than c10d's barrier, so that the wait honours the timeout with our error.
    std::vector<torch::Tensor> t{torch::zeros({1}, tensor_options(torch::kInt))};
    impl_->comm.all_reduce(t, c10d::ReduceOp::SUM, "a barrier");
  }

  /// Replaces `tensors` in place with rank `root`'s values (one collective per dtype).
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0) const {
    if (!distributed()) return;
    check_root(root, "broadcast");
    detail::flat_collective(tensors, [&](torch::Tensor& flat) {
      std::vector<torch::Tensor> v{to_comm(flat)};
      impl_->comm.broadcast(v, root, "a broadcast from rank " + std::to_string(root));
      if (!v[0].is_same(flat)) flat.copy_(v[0]);
    });
  }

  /// Returns the element-wise sum (or `op`: MIN, MAX, PRODUCT) of `t` over ranks; `t` is unchanged.
  torch::Tensor all_reduce(const torch::Tensor& t, c10d::ReduceOp op = c10d::ReduceOp::SUM) const {
    torch::Tensor out = t.detach().clone().contiguous();
    if (!distributed()) return out;
    std::vector<torch::Tensor> v{to_comm(out)};
    impl_->comm.all_reduce(v, op, "an all-reduce");
    return v[0].to(t.device());
  }

  /// Returns every rank's `t` concatenated along dim 0 in rank order, on every rank. The ranks' tensors
  /// may differ in dim 0 (not in the other dims or the dtype: throws naming both shapes).
  torch::Tensor all_gather_cat(const torch::Tensor& t) const {
    TORCH_CHECK(t.defined() && t.dim() >= 1,
                "ohem::DistributedContext::all_gather_cat: expects a tensor of at "
                "least one dimension");
    if (!distributed()) return t.detach().clone();
    const int world = world_size();
    // Agree on the shapes first (and check that they match apart from dim 0).
    const int64_t max_dim = 8;
    TORCH_CHECK(t.dim() <= max_dim, "ohem::DistributedContext::all_gather_cat: at most ", max_dim,
                " dimensions, got ", t.dim());
    torch::Tensor shape = torch::full({max_dim + 2}, -1, torch::kLong);
    shape[0] = t.dim();
    shape[1] = static_cast<int64_t>(t.scalar_type());
    for (int64_t d = 0; d < t.dim(); ++d) shape[d + 2] = t.size(d);
    std::vector<torch::Tensor> shapes = gather_same_shape(shape);
    int64_t rows_max = 0;
    for (int r = 0; r < world; ++r) {
      const auto& s = shapes[static_cast<size_t>(r)];
      bool same =
          s[0].item<int64_t>() == t.dim() && s[1].item<int64_t>() == static_cast<int64_t>(t.scalar_type());
      for (int64_t d = 1; same && d < t.dim(); ++d) same = s[d + 2].item<int64_t>() == t.size(d);
      TORCH_CHECK(same, "ohem::DistributedContext::all_gather_cat: rank ", r, " gave a tensor of shape ",
                  describe(s), " but rank ", rank(), " gave ", t.sizes(), " (", t.scalar_type(),
                  "); only dim 0 may differ");
      rows_max = std::max(rows_max, s[2].item<int64_t>());
    }
    std::vector<int64_t> padded_shape = t.sizes().vec();
    padded_shape[0] = rows_max;
    torch::Tensor padded = torch::zeros(padded_shape, tensor_options(t.scalar_type()));
    if (t.size(0) > 0) padded.narrow(0, 0, t.size(0)).copy_(t.detach());
    std::vector<torch::Tensor> parts = gather_same_shape(padded);
    std::vector<torch::Tensor> out;
    for (int r = 0; r < world; ++r)
      out.push_back(
          parts[static_cast<size_t>(r)].narrow(0, 0, shapes[static_cast<size_t>(r)][2].item<int64_t>()));
    return torch::cat(out).to(t.device());
  }

  /// Runs `f` on rank 0 only (writing a checkpoint, a log, a CSV), then lets every rank continue. If `f`
  /// throws on rank 0, rank 0 rethrows and every other rank throws too, instead of waiting. Collective.
  ///
  /// Example: `dist.run_on_main([&] { save_checkpoint(path); });`
  template <typename F>
  void run_on_main(F&& f) const {
    std::exception_ptr error;
    if (is_main()) {
      try {
        f();
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (distributed()) {
      torch::Tensor ok = torch::full({1}, error ? 0 : 1, torch::kInt);
      broadcast({ok}, 0);
      TORCH_CHECK(is_main() || ok.item<int>() == 1,
                  "ohem::distributed: rank 0 failed in a rank-0-only section ",
                  "(run_on_main); see rank 0's error");
    }
    if (error) std::rethrow_exception(error);
  }

  /// Returns this rank's contiguous share `[begin, end)` of `n` items (see `shard_range`).
  std::pair<int64_t, int64_t> shard(int64_t n) const {
    return shard_range(n, rank(), world_size());
  }

 private:
  friend class DistributedDataParallel;
  // The wait helper every collective of ohem goes through (for the data-parallel wrapper).
  const detail::CommHandle& comm() const {
    return impl_->comm;
  }

  struct Impl {
    DistributedEnv env;
    DistributedOptions options;
    c10::intrusive_ptr<c10d::Store> store;
    detail::CommHandle comm;
    std::string backend_name = "none";
  };

  static bool nccl_available() {
#if defined(USE_C10D_NCCL)
    return true;
#else
    return false;
#endif
  }

  static std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master) {
    // A loopback master means every rank is on this host: bind loopback too. Otherwise the interface
    // named by GLOO_SOCKET_IFNAME (as torch.distributed), or the address this host's name resolves to.
    if (master == "localhost" || master.rfind("127.", 0) == 0 || master == "::1")
      return c10d::ProcessGroupGloo::createDeviceForHostname(master == "localhost" ? "127.0.0.1" : master);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
      return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
    return c10d::ProcessGroupGloo::createDefaultDevice();
  }

  void check_root(int root, const char* what) const {
    TORCH_CHECK(root >= 0 && root < world_size(), "ohem::DistributedContext::", what, ": root rank ", root,
                " outside [0, ", world_size(), ")");
  }

  torch::TensorOptions tensor_options(c10::ScalarType dtype) const {
    const bool nccl = impl_->backend_name == "nccl";
    return torch::TensorOptions().dtype(dtype).device(nccl ? impl_->options.device()
                                                           : torch::Device(torch::kCPU));
  }

  torch::Tensor to_comm(const torch::Tensor& t) const {
    const bool nccl = impl_->backend_name == "nccl";
    return nccl ? t.to(impl_->options.device()).contiguous() : t.to(torch::kCPU).contiguous();
  }

  std::vector<torch::Tensor> gather_same_shape(const torch::Tensor& t) const {
    torch::Tensor in = to_comm(t);
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int r = 0; r < world_size(); ++r) outputs[0].push_back(torch::empty_like(in));
    std::vector<torch::Tensor> inputs{in};
    c10d::AllgatherOptions o;
    o.timeout = impl_->comm.timeout;
    impl_->comm.wait(impl_->comm.backend->allgather(outputs, inputs, o), "an all-gather");
    return outputs[0];
  }

  static std::string describe(const torch::Tensor& s) {
    std::string out = "[";
    const int64_t dims = s[0].item<int64_t>();
    for (int64_t d = 0; d < dims; ++d) out += (d ? ", " : "") + std::to_string(s[d + 2].item<int64_t>());
    return out + "] (" + c10::toString(static_cast<c10::ScalarType>(s[1].item<int64_t>())) + ")";
  }

  std::shared_ptr<Impl> impl_;
};

OHEM_END_NAMESPACE
