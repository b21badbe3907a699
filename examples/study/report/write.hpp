#pragma once
/// \file
/// Writes the report's two files, report.html and report.md, whole or not at all.
#include "render.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace ohem_study {

/// Writes `dir`/report.html and `dir`/report.md for `results` (see render_report); image paths in
/// `results` are relative to `images_dir` (default: `dir`, where the study writes results.json).
/// Both files are written to temporaries (`<name>.tmp`, checked writes) and renamed only when both are
/// complete: the report appears whole or not at all. A failed write (a full disk) removes the
/// temporaries and throws std::runtime_error naming the file, the reason and the bytes needed and
/// available; so does any other error. (No LibTorch here, hence not examples/toolkit/files.hpp.)
inline void write_report(const nlohmann::json& results, const std::filesystem::path& dir,
                         const std::filesystem::path& images_dir = {}) {
  namespace fs = std::filesystem;
  const Report rep = render_report(results, images_dir.empty() ? dir : images_dir);
  fs::create_directories(dir);
  const std::pair<std::string, const std::string*> files[] = {{"report.html", &rep.html},
                                                              {"report.md", &rep.markdown}};
  std::vector<fs::path> temps;
  auto remove_temps = [&] {
    for (const auto& t : temps) {
      std::error_code ignored;
      fs::remove(t, ignored);
    }
  };
  for (const auto& [name, text] : files) {
    const fs::path target = dir / name;
    temps.push_back(dir / (name + ".tmp"));
    errno = 0;
    std::FILE* f = std::fopen(temps.back().string().c_str(), "wb");
    bool ok =
        f != nullptr && std::fwrite(text->data(), 1, text->size(), f) == text->size() && std::fflush(f) == 0;
    int err = errno;
    if (f != nullptr && std::fclose(f) != 0 && ok) {
      ok = false;
      err = errno;
    }
    if (!ok) {
      remove_temps();
      std::error_code ec;
      const fs::space_info sp = fs::space(dir, ec);
      throw std::runtime_error(
          "cannot write " + target.string() + ": " + (err ? std::strerror(err) : "write error") + " (" +
          std::to_string(text->size()) + " bytes needed" +
          (ec ? std::string() : ", " + std::to_string(sp.available) + " available") + ")");
    }
  }
  for (size_t i = 0; i < temps.size(); ++i) {
    std::error_code ec;
    fs::rename(temps[i], dir / files[i].first, ec);
    if (ec) {
      std::error_code ignored;
      for (size_t k = i; k < temps.size(); ++k) fs::remove(temps[k], ignored);
      throw std::runtime_error("cannot rename " + temps[i].string() + " to " +
                               (dir / files[i].first).string() + ": " + ec.message());
    }
  }
}

}  // namespace ohem_study
