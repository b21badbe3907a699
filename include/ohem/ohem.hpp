#pragma once
/// @file
/// Umbrella header: includes every public header of ohem.

#include <ohem/version.hpp>

// The pruned twin: prunable weights, masks, the weight-sharing twin.
#include <ohem/masks.hpp>
#include <ohem/slots.hpp>
#include <ohem/twin.hpp>

// Training: BIQA task losses, the OHEM loss, the one-call self-competitor, hardness tracking.
#include <ohem/hardness.hpp>
#include <ohem/loss.hpp>
#include <ohem/losses.hpp>
#include <ohem/self_competitor.hpp>

// Evaluation: IQA metrics on Eigen, gMAD.
#include <ohem/gmad.hpp>
#include <ohem/metrics.hpp>
