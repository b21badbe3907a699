#pragma once
/// @file
/// The device a program runs on (`--device`), shared by the trainers and ohem-score.

#include <torch/torch.h>

#include <optional>
#include <string>

/// Where the processes of a run are: one process (`world_size` 1), or a launcher's rank on this node.
struct DevicePlacement {
  /// WORLD_SIZE: processes in the run.
  int world_size = 1;
  /// LOCAL_RANK: this process's index on its node.
  int local_rank = 0;
};

/// Returns the device `--device spec` names: `cpu`, `cuda` or `cuda:N`. `cuda_devices` is the number of
/// CUDA devices this LibTorch finds (0 for a CPU-only build: `cuda_device_count()`). Under a launcher
/// with several processes, `cuda` is this rank's `cuda:LOCAL_RANK` (torchrun's convention: one device
/// per process) and `cuda:N` is refused (every rank on this node would share device N). Throws naming
/// the option, its value and what is missing.
inline torch::Device select_device(const std::string& spec, int cuda_devices,
                                   DevicePlacement placement = {}) {
  std::optional<torch::Device> d;
  try {
    d.emplace(spec);
  } catch (const c10::Error&) {
  }
  TORCH_CHECK(d && (d->is_cpu() || d->is_cuda()), "--device must be cpu, cuda or cuda:N, got \"", spec, "\"");
  if (d->is_cpu()) return torch::Device(torch::kCPU);
  TORCH_CHECK(cuda_devices > 0, "--device ", spec,
              ": no CUDA device is available (this LibTorch finds none; it may be a CPU-only build)");
  if (placement.world_size > 1) {
    TORCH_CHECK(!d->has_index(), "--device ", spec, ": under a launcher with ", placement.world_size,
                " processes every rank would use device ", static_cast<int>(d->index()),
                "; give --device cuda, and each rank uses cuda:LOCAL_RANK (restrict the devices with "
                "CUDA_VISIBLE_DEVICES)");
    TORCH_CHECK(placement.local_rank < cuda_devices, "--device cuda: this process is LOCAL_RANK ",
                placement.local_rank, " but there are ", cuda_devices,
                " CUDA devices; run at most one process per device on a node (--nproc-per-node)");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(placement.local_rank));
  }
  TORCH_CHECK(!d->has_index() || d->index() < cuda_devices, "--device ", spec, ": there are ", cuda_devices,
              " CUDA devices");
  return *d;
}

/// Returns the number of CUDA devices this LibTorch finds (0 without CUDA).
inline int cuda_device_count() {
  return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
}
