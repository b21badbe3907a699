#pragma once
/// @file
/// Umbrella header: includes every public header of ohem.

#include <ohem/enum_names.hpp>
#include <ohem/fwd.hpp>
#include <ohem/version.hpp>

// The pruned twin: prunable weights, masks, the weight-sharing twin.
#include <ohem/masks.hpp>
#include <ohem/slot_types.hpp>
#include <ohem/slots.hpp>
#include <ohem/tensor_handle.hpp>
#include <ohem/thin_layers.hpp>
#include <ohem/twin.hpp>
#include <ohem/twin_options.hpp>

// Training: BIQA task losses, the OHEM loss, the one-call self-competitor, hardness tracking.
#include <ohem/hardness.hpp>
#include <ohem/ohem_loss.hpp>
#include <ohem/self_competitor.hpp>
#include <ohem/task_losses.hpp>

// Evaluation: IQA metrics on Eigen, gMAD.
#include <ohem/atomic_file.hpp>
#include <ohem/csv.hpp>
#include <ohem/gmad.hpp>
#include <ohem/metrics.hpp>

// Process settings for CPU training: the heap, the cores; the guard against a LibTorch convolution defect.
#include <ohem/platform.hpp>
#include <ohem/runtime.hpp>
