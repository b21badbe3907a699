#pragma once
/// @file
/// Forward declarations of ohem's public types, for headers that only name them (as `<iosfwd>` does for
/// the standard streams). Include the concept's own header to use one.

#include <ohem/version.hpp>

#include <cstdint>

OHEM_BEGIN_NAMESPACE

// Prunable weights (ohem/slot_types.hpp, ohem/slots.hpp).
enum class LayerKind : std::uint32_t;
struct SlotOptions;
struct Slot;
struct TensorHandle;

// Masks (ohem/masks.hpp).
enum class MaskCriterion;
struct MaskOptions;
struct MaskStats;
class MaskSet;

// Thin layers (ohem/thin_layers.hpp).
enum class ThinLayerAction;
struct ThinLayerOptions;
struct ThinLayer;

// The pruned twin (ohem/twin_options.hpp, ohem/twin.hpp).
enum class BatchNormPolicy;
struct TwinOptions;
class MaskedScope;
class FullForwardGuard;
template <typename Model>
class PrunedTwin;

// Task losses (ohem/task_losses.hpp).
struct PairwiseFidelityLossOptions;
class PairwiseFidelityLoss;
struct MosLossOptions;
class MosL1Loss;
class MosMSELoss;
struct PlccLossOptions;
class PlccLoss;
struct MarginRankingPairLossOptions;
class MarginRankingPairLoss;

// The OHEM loss (ohem/ohem_loss.hpp).
enum class Consistency;
struct OhemLossOptions;
struct OhemLossResult;
template <typename TaskLoss>
class OhemLoss;

// The self-competitor (ohem/self_competitor.hpp).
enum class SelfCompetitorMode;
struct SelfCompetitorOptions;
template <typename Model, typename TaskLoss>
class SelfCompetitor;

// Process settings (ohem/runtime.hpp).
struct HeapOptions;
struct HeapTuning;

// The platform guard (ohem/platform.hpp).
struct ConvolutionProbe;

// Hardness tracking (ohem/hardness.hpp).
enum class HardnessAverage;
struct HardnessTrackerOptions;
struct HardnessEntry;
class HardnessTracker;

// Evaluation: scores, correlations, logistic models and fits, bootstrap evaluation (ohem/metrics.hpp),
// gMAD (ohem/gmad.hpp).
class ScoresRef;
enum class LogisticModel;
enum class FitStatus;
struct FitOptions;
struct LogisticFit;
struct LogisticStart;
struct Interval;
struct BootstrapIntervals;
struct EvalOptions;
struct Evaluation;
struct PairedTTestOptions;
struct PairedTTest;
struct SignFlipTest;
struct DetectableEffectOptions;
struct GmadOptions;
struct GmadPair;
struct GmadResult;
struct GmadCompetition;
struct SelfGmadResult;

OHEM_END_NAMESPACE
