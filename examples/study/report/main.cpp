// study_report: results.json of the `study` program → report.html (self-contained) + report.md.
// Usage: study_report results.json [--out DIR]   (DIR defaults to the directory of results.json)
#include <study/report/report.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <fstream>

int main(int argc, char** argv) {
  CLI::App app(
      "Writes the study's report: report.html (one self-contained page: inline SVG charts, the gMAD "
      "images embedded) and report.md (the same tables in Markdown), from the study's results.json.",
      "study_report");
  std::string input, out;
  app.add_option("results", input,
                 "results.json written by the study (schema ohem-study/1, or study v2's ohem-study/2)")
      ->required();
  app.add_option("--out", out, "output directory (default: the directory of results.json)");
  CLI11_PARSE(app, argc, argv);
  try {
    std::ifstream in(input);
    if (!in.good()) throw std::runtime_error("cannot read " + input);
    nlohmann::json results;
    try {
      results = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(input + ": not valid JSON: " + e.what());
    }
    const std::filesystem::path base = std::filesystem::absolute(input).parent_path();
    const std::filesystem::path dir = out.empty() ? base : std::filesystem::path(out);
    ohem_study::write_report(results, dir, base);
    std::printf("wrote %s and %s\n", (dir / "report.html").string().c_str(),
                (dir / "report.md").string().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "study_report: %s\n", e.what());
    return 1;
  }
}
