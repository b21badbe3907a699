// Tests of the shared CSV reader (examples/toolkit/csv.hpp) and file helpers (examples/toolkit/files.hpp).
#include "support.hpp"

#include "../examples/toolkit/csv.hpp"
#include "../examples/toolkit/files.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ohem_examples;
using Catch::Matchers::Contains;
using ohem_test::listing;
using ohem_test::temp_dir;
using ohem_test::write_file;

TEST_CASE("csv: RFC 4180 quoting, BOM, CRLF, blank lines and trimming", "[csv]") {
  const CsvFile f = parse_csv(
      "\xEF\xBB\xBFname,value\r\n\"a, b\",\"say \"\"hi\"\"\"\r\n\r\n  c  , 2 \r\n \"q\" ,x\n", "t.csv");
  REQUIRE(f.header == std::vector<std::string>{"name", "value"});
  REQUIRE(f.rows.size() == 3);
  CHECK(f.rows[0].second == std::vector<std::string>{"a, b", "say \"hi\""});
  CHECK(f.rows[1].first == 4);
  CHECK(f.rows[1].second == std::vector<std::string>{"c", "2"});
  CHECK(f.rows[2].second == std::vector<std::string>{"q", "x"});
  // Positions: "  c  , 2 " -> c at column 3, 2 at column 8.
  CHECK(f.where(1, 0) == "t.csv:4:3");
  CHECK(f.where(1, 1) == "t.csv:4:8");
  // No trimming when asked.
  const CsvFile g = parse_csv("a, b \n", "t.csv", CsvOptions().header(false).trim(false));
  CHECK(g.rows[0].second == std::vector<std::string>{"a", " b "});
  // Empty fields and a trailing separator.
  const CsvFile h = parse_csv("a,,\n", "t.csv", CsvOptions().header(false));
  CHECK(h.rows[0].second == std::vector<std::string>{"a", "", ""});
}

TEST_CASE("csv: a quoted field spanning lines keeps lines and columns right", "[csv]") {
  const std::string text = "name,mos,note\n\"multi\nline\",3,x\nb,4,\"two\r\nlines\"\nc,oops\"x,1\n";
  // The record after the multi-line one starts on line 4; "3" is on line 3, column 7.
  CHECK_THROWS_WITH(parse_csv(text, "m.csv"), Contains("m.csv:6:7: quote inside an unquoted field"));
  const CsvFile f = parse_csv("name,mos\n\"multi\nline\",3\nb,4\n", "m.csv");
  REQUIRE(f.rows.size() == 2);
  CHECK(f.rows[0].first == 2);
  CHECK(f.rows[0].second[0] == "multi\nline");
  CHECK(f.where(0, 0) == "m.csv:2:1");
  CHECK(f.where(0, 1) == "m.csv:3:7");  // never a negative column
  CHECK(f.rows[1].first == 4);
  CHECK(f.where(1, 1) == "m.csv:4:3");
  // Field-count errors point at the extra field or at the record's end.
  const CsvOptions same = CsvOptions().same_width(true);
  CHECK_THROWS_WITH(parse_csv("a,b\n\"x\ny\",1,2\n", "w.csv", same),
                    Contains("w.csv:3:6: expected 2 fields as in the header, got 3"));
  CHECK_THROWS_WITH(parse_csv("a,b,c\n\"x\ny\",1\n", "w.csv", same),
                    Contains("w.csv:3:5: expected 3 fields as in the header, got 2"));
  CHECK_THROWS_WITH(parse_csv("1,2\n3\n", "w.csv", CsvOptions().header(false).same_width(true)),
                    Contains("w.csv:2:2: expected 2 fields as in the first record, got 1"));
}

TEST_CASE("csv: malformed input names file, line and column", "[csv]") {
  CHECK_THROWS_WITH(parse_csv("a,b\n1,\"open\n2,3\n", "u.csv"),
                    Contains("u.csv:2:3: unterminated quoted field"));
  CHECK_THROWS_WITH(parse_csv("a,b\n\"x\"y,1\n", "u.csv"),
                    Contains("u.csv:2:4: unexpected 'y' after a closing quote"));
  CHECK_THROWS_WITH(parse_csv("a,b\n1,2\r3,4\n", "u.csv"), Contains("u.csv:2:4: stray carriage return"));
  CHECK_THROWS_WITH(parse_csv("", "e.csv"), Contains("e.csv: the file is empty"));
  CHECK_THROWS_WITH(parse_csv("\n  \r\n\n", "e.csv"), Contains("the file is empty"));
  // Header only: not empty, no rows.
  CHECK(parse_csv("a,b\n", "h.csv").rows.empty());
}

TEST_CASE("csv: columns by header name with aliases, case-insensitive", "[csv]") {
  const CsvFile f = parse_csv(" Image , Prediction,MOS \nx.png,1,2\n", "c.csv");
  CHECK(f.column({"name", "image", "file"}) == 0);
  CHECK(f.column(std::vector<std::string>{"mos", "score"}) == 2);
  CHECK(f.column({"pred", "PREDICTION"}) == 1);
  CHECK(f.column({"group"}) == -1);
  CHECK_THROWS_WITH(f.require_column({"group", "type"}, "group"),
                    Contains("c.csv:1: no group column in the header (looked for \"group\" or \"type\"") &&
                        Contains("\"Image\""));
  const CsvFile amb = parse_csv("name,mos,score\nx,1,2\n", "a.csv");
  CHECK_THROWS_WITH(amb.column({"mos", "score"}), Contains("a.csv:1:10: ambiguous header") &&
                                                      Contains("columns 2 (\"mos\") and 3 (\"score\")"));
  // The same column matched by two aliases is not ambiguous.
  CHECK(amb.column({"MOS", "mos"}) == 1);
  // Headerless mode: every record is data.
  const CsvFile n = parse_csv("x.png,1,2\n", "n.csv", CsvOptions().header(false));
  CHECK(n.header.empty());
  CHECK(n.rows.size() == 1);
}

TEST_CASE("csv: files, directories and split_csv_line", "[csv]") {
  const std::string dir = temp_dir("csvfiles");
  const std::string p = (fs::path(dir) / "a.csv").string();
  write_file(p, "name,mos\n\xff\xfe,1\n");  // bytes are kept as they are
  const CsvFile f = read_csv(p, true);
  CHECK(f.rows[0].second[0] == "\xff\xfe");
  CHECK_THROWS_WITH(read_csv(dir, true), Contains(dir) && Contains("is a directory"));
  CHECK_THROWS_WITH(read_csv((fs::path(dir) / "none.csv").string(), true),
                    Contains("none.csv") && Contains("does not exist"));
  write_file(p, "");
  CHECK_THROWS_WITH(read_csv(p, true), Contains("a.csv: the file is empty"));
  CHECK(split_csv_line("a, \"b,c\" ,d", "--shares") == std::vector<std::string>{"a", "b,c", "d"});
  CHECK(split_csv_line("", "--shares") == std::vector<std::string>{""});
  CHECK_THROWS_WITH(split_csv_line("a,\"b", "--shares"), Contains("--shares:1:3: unterminated"));
}

TEST_CASE("files: atomic writes replace the target and leave no temporary behind", "[csv][files]") {
  const std::string dir = temp_dir("atomic");
  const std::string p = (fs::path(dir) / "out.json").string();
  atomic_write_text(p, "one");
  CHECK(ohem_test::read_file(p) == "one");
  atomic_write_text(p, "two", AtomicWriteOptions().sync(true));
  CHECK(ohem_test::read_file(p) == "two");
  CHECK(listing(dir) == std::set<std::string>{"out.json"});
  // A writer that throws: the old content stays, the temporary is removed.
  std::string seen_tmp;
  CHECK_THROWS_WITH(atomic_write_file(p,
                                      [&](const std::string& tmp) {
                                        seen_tmp = tmp;
                                        std::ofstream(tmp) << "partial";
                                        throw std::runtime_error("disk on fire");
                                      }),
                    Contains("disk on fire"));
  CHECK(ohem_test::read_file(p) == "two");
  CHECK(fs::path(seen_tmp).parent_path() == fs::path(dir));
  CHECK(fs::path(seen_tmp).filename().string().rfind(atomic_temp_prefix(p), 0) == 0);
  CHECK(listing(dir) == std::set<std::string>{"out.json"});
  // Two temporaries never share a name.
  std::string t1, t2;
  atomic_write_file(p, [&](const std::string& tmp) { t1 = tmp; });
  atomic_write_file(p, [&](const std::string& tmp) { t2 = tmp; });
  CHECK(t1 != t2);
  // The rename fails (the target became a directory): the temporary is removed too.
  const std::string d2 = (fs::path(dir) / "sub").string();
  fs::create_directories(d2);
  CHECK_THROWS_WITH(atomic_write_text(d2, "x"), Contains("is a directory"));
  const std::string missing = (fs::path(dir) / "no" / "such" / "f.txt").string();
  CHECK_THROWS_WITH(atomic_write_text(missing, "x"), Contains("does not exist"));
  atomic_write_text(missing, "made", AtomicWriteOptions().create_directories(true));
  CHECK(ohem_test::read_file(missing) == "made");
  // Stale temporaries of ours (after a crash) are recognised; other files are not touched.
  write_file(p + ".tmp.0123456789abcdef", "stale");
  write_file(p + ".tmp.keep", "other");
  CHECK(remove_stale_temporaries(p) == 1);
  CHECK(fs::exists(p + ".tmp.keep"));
}

TEST_CASE("files: output paths are checked before any work", "[csv][files]") {
  const std::string dir = temp_dir("outcheck");
  const std::string in = (fs::path(dir) / "in.csv").string();
  write_file(in, "name,mos\n");
  // The same file, spelled differently, through a symbolic link and through a hard link.
  CHECK_THROWS_WITH(check_output_path(in, {in}, "--json"),
                    Contains("--json \"" + in + "\" is the input file") && Contains("refusing to overwrite"));
  const std::string dotted = (fs::path(dir) / "." / "in.csv").string();
  CHECK_THROWS_WITH(check_output_path(dotted, {in}, "--json"), Contains("is the input file"));
  const std::string sym = (fs::path(dir) / "sym.csv").string();
  fs::create_symlink(in, sym);
  CHECK_THROWS_WITH(check_output_path(sym, {in}, "--pairs"),
                    Contains("--pairs") && Contains("is the input file"));
  CHECK_THROWS_WITH(check_output_path(in, {sym}, "--pairs"), Contains("is the input file"));
  const std::string hard = (fs::path(dir) / "hard.csv").string();
  fs::create_hard_link(in, hard);
  CHECK_THROWS_WITH(check_output_path(hard, {in}, "--json"), Contains("is the input file"));
  // A directory given as a file, a missing directory, a parent that is a file.
  CHECK_THROWS_WITH(check_output_path(dir, {in}, "--json"), Contains("is a directory; expected a file path"));
  CHECK_THROWS_WITH(check_output_path((fs::path(dir) / "nope" / "x.json").string(), {in}, "--json"),
                    Contains("directory \"" + (fs::path(dir) / "nope").string() + "\" does not exist"));
  CHECK_THROWS_WITH(check_output_path((fs::path(in) / "x.json").string(), {in}, "--json"),
                    Contains("is not a directory"));
  CHECK_THROWS_WITH(check_output_path("", {in}, "--json"), Contains("--json: empty output path"));
  // Fine: a new file, or an existing file that is not an input. Nothing is left behind.
  const auto before = listing(dir);
  check_output_path((fs::path(dir) / "new.json").string(), {in}, "--json");
  check_output_path(in, {(fs::path(dir) / "other.csv").string()}, "--json");
  CHECK(listing(dir).size() == before.size());
  // Two outputs naming one file.
  CHECK_THROWS_WITH(check_output_paths({{"--json", (fs::path(dir) / "o.txt").string()},
                                        {"--pairs", (fs::path(dir) / "." / "o.txt").string()}},
                                       {in}),
                    Contains("--pairs and --json name the same file"));
  // No permission to write: a read-only directory, or, where the user may write anyway (root), a
  // directory the kernel refuses files in (procfs, sysfs). Skipped only where none refuses.
  const std::string ro = (fs::path(dir) / "ro").string();
  fs::create_directories(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  const auto refuses_files = [](const std::string& d) {
    if (!fs::is_directory(d)) return false;
    const fs::path probe = fs::path(d) / "ohem-write-probe";
    if (!std::ofstream(probe.string()).good()) return true;
    std::error_code ec;
    fs::remove(probe, ec);
    return false;
  };
  std::string unwritable;
  for (const std::string& d : {ro, std::string("/proc/self"), std::string("/sys")}) {
    if (refuses_files(d)) {
      unwritable = d;
      break;
    }
  }
  fs::permissions(ro, fs::perms::owner_all);
  if (unwritable.empty()) OHEM_SKIP("no directory here refuses new files to this user (root without /proc?)");
  INFO("unwritable directory: " << unwritable);
  CHECK_THROWS_WITH(check_output_path((fs::path(unwritable) / "x.json").string(), {in}, "--json"),
                    Contains("cannot create files in directory"));
}

TEST_CASE("files: input checks name a directory as a directory", "[csv][files]") {
  const std::string dir = temp_dir("incheck");
  CHECK_THROWS_WITH(check_input_file(dir, "input CSV"), Contains("input CSV \"" + dir + "\" is a directory"));
  CHECK_THROWS_WITH(check_input_file((fs::path(dir) / "x").string(), "input CSV"),
                    Contains("does not exist"));
  CHECK_THROWS_WITH(check_input_file("", "input CSV"), Contains("empty path"));
}

TEST_CASE("csv: parse_decimal gives strtod's value and verdict, repeated_keys a map of first rows", "[csv]") {
  // parse_decimal takes the from_chars path where it can; the reference is strtod on the same text with
  // the documented verdict (finite, and no ERANGE except an underflow to 0).
  uint64_t state = 77;
  auto draw = [&](uint64_t k) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % k;
  };
  std::vector<std::string> texts = {"1e-310",
                                    "-4.9e-324",
                                    "2.2250738585072014e-308",
                                    "2.2250738585072011e-308",
                                    "1e-400",
                                    "1.7976931348623157e308",
                                    "1.8e308",
                                    "+0.5",
                                    "-0",
                                    "+.5e+1",
                                    "0.2582936660520043",
                                    "63.69616873214543",
                                    "9007199254740993"};
  for (int k = 0; k < 20000; ++k) {
    std::string t = draw(3) == 0 ? "-" : draw(2) == 0 ? "+" : "";
    const auto int_digits = draw(6), frac_digits = draw(19);
    for (uint64_t d = 0; d < int_digits; ++d) t += static_cast<char>('0' + draw(10));
    if (frac_digits > 0 || int_digits == 0) t += '.';
    for (uint64_t d = 0; d < frac_digits || (int_digits == 0 && d == 0); ++d)
      t += static_cast<char>('0' + draw(10));
    if (draw(3) == 0) t += "e" + std::to_string(static_cast<int>(draw(640)) - 330);
    texts.push_back(t);
  }
  int64_t accepted = 0;
  for (const std::string& t : texts) {
    errno = 0;
    char* end = nullptr;
    const double want = std::strtod(t.c_str(), &end);
    const bool ok = end == t.c_str() + t.size() && std::isfinite(want) && !(errno == ERANGE && want != 0.0);
    double got = -1;
    INFO(t);
    REQUIRE(parse_decimal(t, got) == ok);
    if (ok) CHECK(std::memcmp(&got, &want, sizeof(double)) == 0);
    accepted += ok;
  }
  CHECK(accepted > 19000);
  // repeated_keys against the map it replaced: each later row paired with the key's first row, in order.
  std::vector<std::string> keys;
  for (int k = 0; k < 5000; ++k) keys.push_back("img" + std::to_string(draw(3000)) + ".png");
  std::vector<RepeatedKey> want;
  std::map<std::string, size_t> first;
  for (size_t r = 0; r < keys.size(); ++r) {
    const auto it = first.emplace(keys[r], r).first;
    if (it->second != r) want.push_back({r, it->second});
  }
  const auto got = repeated_keys(keys);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK((got[i].row == want[i].row && got[i].first == want[i].first));
}
