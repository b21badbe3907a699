// study: the evidence for OHEM on built-in data. Builds the synthetic-distortion set from a folder of
// photographs (scripts/fetch-photos.sh), trains BaseCNN pairwise without and with OHEM on N seeds (same
// data, crops and initialisation per seed), measures the mechanism (which training images the twin finds
// hard, with a random-mask and a 4-twin control), runs gMAD between the two models on held-out content
// adjudicated by the SSIM labels, and writes results.json (schema "ohem-study/1", docs/study.md), then the
// report (report.html + report.md). scripts/study.sh runs it with one command. `--design v2` runs issue
// 26's design, registered in docs/study.md ("Study v2: registered design"; study_v2.hpp, v2_run.hpp).
//
// Usage: study [--photos DIR] [--out DIR] [--seeds N] [--quick] [options, see --help]
//
// The parts: options.hpp (the command line), run_setup.hpp, training.hpp and results_json.hpp (what both
// designs share), v1_training.hpp, v1_results.hpp and v1_run.hpp (study v1), v2_training.hpp,
// v2_results.hpp and v2_run.hpp (study v2), report/ (the report).
#include "options.hpp"
#include "v1_run.hpp"
#include "v2_run.hpp"

#include <toolkit/command_line.hpp>
#include <toolkit/errors.hpp>

#include <CLI/CLI.hpp>

#include <utility>

namespace {

// Runs the design that --design names.
int run(ohem_study::program::StudyOptions o) {
  return o.design == "v2" ? ohem_study::program::run_v2(std::move(o))
                          : ohem_study::program::run_v1(std::move(o));
}

}  // namespace

int main(int argc, char** argv) {
  ohem_examples::tune_heap_at_start(argc, argv);  // printed before the threads line (docs/benchmarks.md)
  CLI::App app{"The OHEM study: baseline vs OHEM on N seeds, the mechanism, gMAD; writes results.json.",
               "study"};
  ohem_study::program::StudyOptions o;
  ohem_study::program::add_study_options(app, o);
  CLI11_PARSE(app, argc, argv);
  ohem_study::program::apply_quick(app, o);
  ohem_study::program::apply_design(app, o);
  return ohem_examples::run_reporting_errors([&] { return run(o); });
}
