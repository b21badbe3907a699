#pragma once
/// @file
/// Joining two input files of `ohem-eval` by image name (SCORES.csv --mos MOS.csv, or --gmad A.csv B.csv):
/// reading each file's columns as a `SideSpec` says, pairing the records by name (compared exactly), the
/// error that lists the names found in one file only, and --partial's note of what was left out.

#include "columns.hpp"
#include "options.hpp"

#include <toolkit/csv.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ohem_eval {

/// What one file of a join must, may and must not have.
struct SideSpec {
  std::vector<std::string> required;           ///< roles
  bool group = false;                          ///< may have a group column (`group_column`)
  std::map<std::string, std::string> refused;  ///< role -> why a column for it is an error
  bool ignore_others = false;                  ///< columns of no role are ignored (else an error)
  std::string expected;                        ///< the columns expected, for the unknown-column error
};

/// One file of a join: its table and the columns it supplies, by role.
struct Side {
  CsvFile csv;
  std::map<std::string, int64_t> column;     ///< role -> index
  std::map<std::string, std::string> label;  ///< role -> the header's name
};

/// Reads one file of a join (with a header row; every record as wide as it) and finds its columns as
/// `spec` says. Throws naming the file, line and column of a missing, unknown or refused column.
inline Side read_side(const std::string& path, const SideSpec& spec, const Args& args) {
  Side s;
  s.csv = ohem_examples::read_csv(path, ohem_examples::CsvOptions().header(true).same_width(true));
  const CsvFile& t = s.csv;
  std::vector<bool> used(t.header.size(), false);
  auto take = [&](const std::string& role, int64_t c) {
    s.column[role] = c;
    s.label[role] = t.header[static_cast<size_t>(c)];
    used[static_cast<size_t>(c)] = true;
  };
  for (const auto& role : spec.required) take(role, t.require_column(role_aliases(role), role));
  if (spec.group) {
    std::vector<size_t> others;
    const int64_t c = group_column(t, args, false, others);
    if (c >= 0) take("group", c);
    for (size_t o : others) used[o] = true;
  }
  for (const auto& [role, why] : spec.refused) {
    const int64_t c = t.column(role_aliases(role));
    if (c < 0) continue;
    const auto& p = t.header_positions[static_cast<size_t>(c)];
    TORCH_CHECK(false, path, ":", p.line, ":", p.column, ": column ", c + 1, " (\"",
                t.header[static_cast<size_t>(c)], "\") is a ", role, " column: ", why);
  }
  for (size_t c = 0; c < used.size() && !spec.ignore_others; ++c) {
    if (used[c]) continue;
    const auto& p = t.header_positions[c];
    TORCH_CHECK(false, path, ":", p.line, ":", p.column, ": unknown column ", c + 1, " \"", t.header[c],
                "\" (expected ", spec.expected, "; see --help for the aliases)");
  }
  return s;
}

/// The rows of two files paired by name, in the first file's order.
struct Joined {
  std::vector<std::pair<size_t, size_t>> rows;     ///< (record in the first file, record in the second)
  size_t first_rows = 0, second_rows = 0;          ///< the files' records
  size_t first_left_out = 0, second_left_out = 0;  ///< records whose name the other file lacks
};

/// Returns the names of `s`'s records; throws naming the file, line and column of an empty or repeated
/// name (a join cannot tell which of two rows of one name goes with the other file's row).
inline std::vector<std::string> join_names(const Side& s) {
  const CsvFile& t = s.csv;
  const size_t cn = static_cast<size_t>(s.column.at("name"));
  const std::vector<std::string> names = image_names(t, cn);
  for (const ohem_examples::RepeatedKey& k : ohem_examples::repeated_keys(names)) {
    TORCH_CHECK(false, t.where(k.row, cn), ": image \"", names[k.row], "\" appears again (first on line ",
                t.rows[k.first].first, "); a join by name needs each name once in each file");
  }
  return names;
}

/// Pairs the records of `a` and `b` by name (compared exactly, as written). A name in one file only is an
/// error that counts them and lists the first few of each file with file, line and column, unless
/// `partial`: then those records are left out and counted.
inline Joined join_by_name(const Side& a, const Side& b, bool partial) {
  const auto na = join_names(a), nb = join_names(b);
  std::map<std::string, size_t> in_b;
  for (size_t r = 0; r < nb.size(); ++r) in_b.emplace(nb[r], r);
  Joined j;
  j.first_rows = na.size();
  j.second_rows = nb.size();
  std::vector<bool> matched(nb.size(), false);
  std::vector<size_t> only_a, only_b;
  for (size_t r = 0; r < na.size(); ++r) {
    const auto it = in_b.find(na[r]);
    if (it == in_b.end()) {
      only_a.push_back(r);
      continue;
    }
    j.rows.emplace_back(r, it->second);
    matched[it->second] = true;
  }
  for (size_t r = 0; r < nb.size(); ++r) {
    if (!matched[r]) only_b.push_back(r);
  }
  j.first_left_out = only_a.size();
  j.second_left_out = only_b.size();
  if (partial || (only_a.empty() && only_b.empty())) return j;
  const std::string& pa = a.csv.path;
  const std::string& pb = b.csv.path;
  const size_t ca = static_cast<size_t>(a.column.at("name")), cb = static_cast<size_t>(b.column.at("name"));
  constexpr size_t kListed = 5;
  std::string list;
  auto add = [&](const Side& s, size_t c, const std::vector<size_t>& rows,
                 const std::vector<std::string>& names, const std::string& other) {
    for (size_t i = 0; i < std::min(rows.size(), kListed); ++i) {
      list += fmt::format("\n  {}: \"{}\" is not in {}", s.csv.where(rows[i], c), names[rows[i]], other);
    }
    if (rows.size() > kListed)
      list += fmt::format("\n  ... and {} more in {}", rows.size() - kListed, s.csv.path);
  };
  add(a, ca, only_a, na, pb);
  add(b, cb, only_b, nb, pa);
  // The likeliest cause when both sides have leftovers: the same image written with and without a folder.
  std::map<std::string, size_t> b_by_file;
  for (size_t r : only_b) b_by_file.emplace(std::filesystem::path(nb[r]).filename().string(), r);
  for (size_t r : only_a) {
    const auto it = b_by_file.find(std::filesystem::path(na[r]).filename().string());
    if (it == b_by_file.end()) continue;
    list += fmt::format(
        "\nhint: names are compared exactly as written: \"{}\" ({}) and \"{}\" ({}) differ in their "
        "folders",
        na[r], a.csv.where(a.csv.rows[r].first), nb[it->second], b.csv.where(b.csv.rows[it->second].first));
    break;
  }
  TORCH_CHECK(false, "ohem-eval: the files do not list the same images: ", only_a.size(), " of the ",
              na.size(), " names in ", pa, " are not in ", pb, ", and ", only_b.size(), " of the ", nb.size(),
              " names in ", pb, " are not in ", pa, "; --partial evaluates the ", j.rows.size(),
              " images in both", list);
  return j;
}

/// Returns the note that says what --partial left out of a join ("" when nothing was).
inline std::string partial_note(const Joined& j, const std::string& first, const std::string& second) {
  if (j.first_left_out == 0 && j.second_left_out == 0) return "";
  return fmt::format(
      "note: --partial: {} images in both files; left out {} of the {} rows of {} and {} of the {} "
      "rows of {} (names not in the other file)",
      j.rows.size(), j.first_left_out, j.first_rows, first, j.second_left_out, j.second_rows, second);
}

}  // namespace ohem_eval
