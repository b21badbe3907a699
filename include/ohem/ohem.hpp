#pragma once
/// @file
/// Umbrella header: includes every public header of ohem.

#include <ohem/version.hpp>

// The pruned twin: prunable weights, masks, the weight-sharing twin.
#include <ohem/slots.hpp>
#include <ohem/masks.hpp>
#include <ohem/twin.hpp>

// Training: BIQA task losses, the OHEM loss, the one-call self-competitor, hardness tracking.
#include <ohem/losses.hpp>
#include <ohem/loss.hpp>
#include <ohem/self_competitor.hpp>
#include <ohem/hardness.hpp>

// Evaluation: IQA metrics on Eigen, gMAD.
#include <ohem/metrics.hpp>
#include <ohem/gmad.hpp>
