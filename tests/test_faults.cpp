// Faults at scale and hostile inputs (issue 27), the examples' and tools' side: image bombs, files a CSV
// names outside --image-root, Markdown that copies names, loose numbers and conflicting duplicates in the
// trainers' CSVs, checkpoints that lack an entry, and full disks (a small tmpfs, mounted where permitted).
#include "support_toolkit.hpp"

#include <ohem_eval/ohem_eval.hpp>
#include <study/report/report.hpp>
#include <toolkit/checkpoint.hpp>
#include <toolkit/command_line.hpp>
#include <toolkit/csv.hpp>
#include <toolkit/datasets.hpp>
#include <toolkit/files.hpp>
#include <toolkit/html.hpp>
#include <toolkit/image.hpp>
#include <toolkit/mos_trainer.hpp>

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ohem_examples;
using Catch::Matchers::Contains;
using ohem_test::listing;
using ohem_test::read_file;
using ohem_test::temp_dir;
using ohem_test::tiny_options;
using ohem_test::trainer_csv;
using ohem_test::write_file;

namespace {

// CRC-32 of PNG chunks (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320), bit by bit: written
// here independently of the image libraries.
uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

void put_be32(std::string& s, size_t at, uint32_t v) {
  for (int k = 0; k < 4; ++k) s[at + k] = static_cast<char>((v >> (24 - 8 * k)) & 0xFF);
}

// A valid 4 x 4 PNG whose IHDR then announces a grey image of width x height (CRC recomputed): a
// "decompression bomb" of a few dozen bytes, as the 20000 x 20000 grey PNG of issue 27.
std::string bomb_png(const std::string& dir, uint32_t width, uint32_t height) {
  const std::string small = (fs::path(dir) / "small.png").string();
  save_image(small, torch::full({4, 4, 3}, 7, torch::kUInt8));
  std::string png = read_file(small);
  REQUIRE(png.compare(12, 4, "IHDR") == 0);
  put_be32(png, 16, width);
  put_be32(png, 20, height);
  png[25] = 0;                                   // colour type 0: grey
  put_be32(png, 29, crc32(png.substr(12, 17)));  // the CRC covers the chunk type and its 13 data bytes
  const std::string path = (fs::path(dir) / "bomb.png").string();
  write_file(path, png);
  return path;
}

// A tmpfs of `bytes` mounted on a fresh directory (root only); unmounted by the destructor.
struct Tmpfs {
  explicit Tmpfs(const std::string& name, const std::string& size) : dir(temp_dir(name)) {
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  // Fills the file system with a file "filler" so that `leave` bytes (a multiple of the block size)
  // stay available.
  void fill(uint64_t leave) const {
    struct statvfs st {};
    REQUIRE(::statvfs(dir.c_str(), &st) == 0);
    const uint64_t avail = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
    REQUIRE(avail >= leave);
    std::FILE* f = std::fopen((fs::path(dir) / "filler").string().c_str(), "ab");
    REQUIRE(f != nullptr);
    const std::string block(st.f_frsize, '\0');
    for (uint64_t n = 0; n + leave < avail; n += st.f_frsize) std::fwrite(block.data(), 1, block.size(), f);
    std::fclose(f);
    REQUIRE(::statvfs(dir.c_str(), &st) == 0);
    REQUIRE(static_cast<uint64_t>(st.f_bavail) * st.f_frsize == leave);
  }
  void unfill() const { fs::remove(fs::path(dir) / "filler"); }
  std::string dir;
  bool mounted = false;
};

// No temporary of an atomic write (`<name>.tmp.<16 hex>`, `<name>.tmp`) in `dir`.
bool no_temporaries(const std::string& dir) {
  for (const auto& n : listing(dir)) {
    if (n.find(".tmp") != std::string::npos) {
      UNSCOPED_INFO("left behind: " << n);
      return false;
    }
  }
  return true;
}

std::pair<int, std::string> eval(const std::vector<std::string>& args) {
  std::string out, err;
  const int rc = ohem_eval::run(args, out, err);
  return {rc, out + err};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Item 4: image bombs

TEST_CASE("faults: an image whose header announces more pixels than the limit is refused before decoding",
          "[faults][image]") {
  const std::string dir = temp_dir("bomb");
  const std::string bomb = bomb_png(dir, 20000, 20000);
  CHECK(fs::file_size(bomb) < 200);
  // 20000 * 20000 = 4e8 pixels (1.2 GB decoded): refused from the header, with the file, size and limit.
  CHECK(kDefaultMaxPixels == 64'000'000);
  CHECK_THROWS_WITH(load_image(bomb), Contains(bomb) && Contains("20000 x 20000 = 400000000 pixels") &&
                                          Contains("limit of 64000000 pixels") && Contains("--max-pixels"));
  const std::string bytes = read_file(bomb);
  CHECK_THROWS_WITH(
      decode_image(std::vector<unsigned char>(bytes.begin(), bytes.end()), "\"bomb in memory\""),
      Contains("bomb in memory") && Contains("400000000 pixels"));
  // The limit is inclusive: a 20 x 16 image (320 pixels) loads at 320, not at 319.
  const std::string small = (fs::path(dir) / "small20x16.png").string();
  save_image(small, torch::zeros({16, 20, 3}, torch::kUInt8));
  CHECK(load_image(small, 320).sizes() == torch::IntArrayRef({16, 20, 3}));
  CHECK_THROWS_WITH(load_image(small, 319), Contains("20 x 16 = 320 pixels") && Contains("limit of 319"));

  // The trainers: --max-pixels (default the same limit) reaches the image loader.
  CHECK(TrainOptions().max_pixels == kDefaultMaxPixels);
  CHECK(parse_train_args({"--csv", "a.csv", "--max-pixels", "1000"}).max_pixels == 1000);
  const std::string csv = trainer_csv(temp_dir("bomb_data"));
  TrainOptions o = tiny_options(csv, temp_dir("bomb_run"));
  o.max_pixels = 399;  // the images are 20 x 20
  train_mos::Trainer t(o);
  CHECK_THROWS_WITH(t.step(), Contains("all.csv:") && Contains("20 x 20 = 400 pixels") &&
                                  Contains("more than the limit of 399"));
  o.max_pixels = 0;
  o.out = temp_dir("bomb_run0");
  CHECK_THROWS_WITH(train_mos::Trainer(o), Contains("--max-pixels must be positive"));
}

// ---------------------------------------------------------------------------------------------------------------
// Item 5: ohem-eval --gmad --embed-images

TEST_CASE("faults: ohem-eval --embed-images reads only image files under --image-root",
          "[faults][ohem-eval]") {
  const std::string dir = temp_dir("embed");
  const fs::path root = fs::path(dir) / "images", outside = fs::path(dir) / "outside";
  fs::create_directories(root);
  fs::create_directories(outside);
  const torch::Tensor px = torch::full({2, 2, 3}, 9, torch::kUInt8);
  for (int i = 0; i < 3; ++i) {
    save_image((root / ("ok" + std::to_string(i) + ".png")).string(), px);
    save_image((outside / ("s" + std::to_string(i) + ".png")).string(), px);
    write_file((root / ("n" + std::to_string(i) + ".txt")).string(), "secret");
    fs::create_symlink(outside / ("s" + std::to_string(i) + ".png"),
                       root / ("link" + std::to_string(i) + ".png"));
    fs::create_symlink(root / ("ok" + std::to_string(i) + ".png"),
                       root / ("in" + std::to_string(i) + ".png"));
  }
  // Three images; whichever gMAD picks, each name of a set is of the same kind.
  auto run = [&](const std::string& tag, const std::vector<std::string>& names) {
    std::string csv = "name,A,B\n";
    const double a[] = {1.0, 1.1, 1.2}, b[] = {3.0, 1.0, 2.0};
    for (int i = 0; i < 3; ++i) csv += ohem_eval::csv_field(names[i]) + fmt::format(",{},{}\n", a[i], b[i]);
    const std::string in = dir + "/" + tag + ".csv";
    write_file(in, csv);
    const std::string html = dir + "/" + tag + ".html", pairs = dir + "/" + tag + ".pairs.csv";
    auto r = eval({"--gmad", in, "--image-root", root.string(), "--embed-images", "--levels", "1", "--window",
                   "1", "--html", html, "--pairs", pairs});
    if (r.first != 0) {
      CHECK_FALSE(fs::exists(html));  // nothing written
      CHECK_FALSE(fs::exists(pairs));
    }
    return r;
  };
  {
    const auto [rc, out] = run("good", {"ok0.png", "in1.png", "ok2.png"});  // a link inside the root is fine
    INFO(out);
    REQUIRE(rc == 0);
    CHECK(read_file(dir + "/good.html").find("data:image/png;base64,") != std::string::npos);
  }
  {
    const auto [rc, out] = run("dotdot", {"../outside/s0.png", "../outside/s1.png", "../outside/s2.png"});
    INFO(out);
    CHECK(rc == 1);
    CHECK_THAT(out,
               Contains("dotdot.csv:") && Contains("\"../outside/s") && Contains("outside --image-root"));
  }
  {
    const auto [rc, out] = run("link", {"link0.png", "link1.png", "link2.png"});
    INFO(out);
    CHECK(rc == 1);
    CHECK_THAT(out, Contains("link.csv:") && Contains("\"link") && Contains("outside --image-root"));
  }
  {
    const std::string abs = (outside / "s").string();
    const auto [rc, out] = run("abs", {abs + "0.png", abs + "1.png", abs + "2.png"});
    INFO(out);
    CHECK(rc == 1);
    CHECK_THAT(out, Contains("abs.csv:") && Contains("is an absolute path"));
  }
  {
    const auto [rc, out] = run("etc", {"../../../../../../../../etc/passwd", "/etc/hostname", "ok0.png"});
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find("base64") == std::string::npos);
  }
  {
    const auto [rc, out] = run("text", {"n0.txt", "n1.txt", "n2.txt"});
    INFO(out);
    CHECK(rc == 1);
    CHECK_THAT(out, Contains("text.csv:") && Contains("\"n") && Contains("is not an image file"));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Item 6: Markdown escapes what it copies

TEST_CASE("faults: report.md escapes the names it copies", "[faults][report]") {
  using html::markdown_escape;
  CHECK(markdown_escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;");
  CHECK(markdown_escape("a|b") == "a\\|b");
  CHECK(markdown_escape("*x* _y_ `z` [l](u) ~~s~~") == "\\*x\\* \\_y\\_ \\`z\\` \\[l\\](u) \\~\\~s\\~\\~");
  CHECK(markdown_escape("back\\slash &amp;") == "back\\\\slash &amp;amp;");
  CHECK(markdown_escape("two\nlines\r\n") == "two lines  ");
  CHECK(markdown_escape("type+level 0.25 -1") == "type+level 0.25 -1");  // plain text stays as it is

  html::Table t;
  t.caption = "<b>caption</b>";
  t.header = {"name", "value"};
  t.rows = {{"<img src=x onerror=alert(1)>|\n| injected | row |", "1"}};
  const std::string md = html::table_markdown(t);
  CHECK(md.find('<') == std::string::npos);
  CHECK(std::count(md.begin(), md.end(), '\n') == 6);  // caption, blank, header, rule, one row, blank

  // The study report: a name from results.json reaches report.md escaped, as report.html escapes it.
  const std::string fixture = std::string(OHEM_TEST_DATA_DIR) + "/study_results_fixture";
  nlohmann::json results = nlohmann::json::parse(read_file(fixture + "/results.json"));
  results["created"] = "<script>alert(1)</script>\n# heading | cell";
  const ohem_study::Report rep = ohem_study::render_report(results, fixture);
  CHECK(rep.markdown.find("<script") == std::string::npos);
  CHECK(rep.markdown.find("\n# heading") == std::string::npos);
  CHECK(rep.markdown.find("&lt;script&gt;alert(1)&lt;/script&gt; # heading \\| cell") != std::string::npos);
  CHECK(rep.html.find("<script") == std::string::npos);
}

// ---------------------------------------------------------------------------------------------------------------
// Item 8 (examples): trainer CSVs and checkpoints

TEST_CASE("faults: numbers in the CSV inputs are plain decimals", "[faults][csv]") {
  for (const char* good : {"3.5", " -0.25 ", ".5", "5.", "1e-3", "+2E+2", "0", "007"}) {
    double v = -1;
    INFO(good);
    CHECK(parse_decimal(good, v));
    CHECK(v == std::strtod(good, nullptr));
  }
  for (const char* bad :
       {"0x1p3", "0x10", "inf", "-inf", "Infinity", "nan", "NaN", "1e999", "",       " ",
        "1.2.3", "1,5",  "e5",  "1e",   "1e+",      ".",   "-",   "1_000", "3.5abc", "\xd9\xa1"}) {
    double v = -1;
    INFO(bad);
    CHECK_FALSE(parse_decimal(bad, v));
    CHECK(v == -1);
  }
  const std::string dir = temp_dir("decimal");
  const ReadOptions no_images = ReadOptions().check_images(false);
  const std::string g = dir + "/g.csv";
  write_file(g, "path,mos\na.png,3\nb.png,0x1p3\n");
  CHECK_THROWS_WITH(read_generic_csv(g, "", no_images),
                    Contains("g.csv:3:7") && Contains("mos") &&
                        Contains("is not a number (plain decimals only") && Contains("0x1p3"));
  write_file(g, "path,mos\na.png,3\nb.png, inf\n");
  CHECK_THROWS_WITH(read_generic_csv(g, "", no_images), Contains("g.csv:3:8") && Contains("not finite"));
  write_file(g, "a.png,3\nb.png,2,nan\n");  // no header: positional
  CHECK_THROWS_WITH(read_generic_csv(g, "", no_images), Contains("g.csv:2:9") && Contains("std"));
  const std::string k = dir + "/koniq.csv";
  write_file(k, "image_name,MOS,SD\n1.jpg,3.1,0.5\n2.jpg,0x1.8p1,0.5\n");
  CHECK_THROWS_WITH(read_koniq10k(k, dir, no_images), Contains("koniq.csv:3:7") && Contains("0x1.8p1"));
  // ohem-eval uses the same parser.
  const std::string e = dir + "/e.csv";
  write_file(e, "name,mos,prediction\na,1,0x1p3\nb,2,3\nc,3,4\n");
  const auto [rc, out] = eval({e, "--bootstrap", "0", "--no-json"});
  CHECK(rc == 1);
  CHECK_THAT(out, Contains("e.csv:2:5") && Contains("expected a finite number, got \"0x1p3\""));
}

TEST_CASE("faults: trainer CSVs refuse an image that appears again with another MOS", "[faults][csv]") {
  const std::string dir = temp_dir("dups");
  const ReadOptions no_images = ReadOptions().check_images(false);
  const std::string g = dir + "/g.csv";
  write_file(g, "path,mos\na.png,3\nb.png,2\na.png,4\n");
  CHECK_THROWS_WITH(read_generic_csv(g, "", no_images), Contains("g.csv:4") && Contains("a.png") &&
                                                            Contains("appears again with MOS 4") &&
                                                            Contains("first on line 2 with MOS 3"));
  // --skip-bad-rows drops the later row with a warning.
  const Dataset skipped = read_generic_csv(g, "", ReadOptions().check_images(false).skip_bad_rows(true));
  CHECK(skipped.size() == 2);
  CHECK(skipped.skipped == 1);
  CHECK(skipped.samples[0].mos == 3);
  // The same score again is the same fact: kept.
  write_file(g, "path,mos\na.png,3\nb.png,2\na.png,3.0\n");
  CHECK(read_generic_csv(g, "", no_images).size() == 3);
  // The one check of repeated keys (ohem-eval's too).
  const auto r = repeated_keys({"a", "b", "a", "c", "b", "a"});
  REQUIRE(r.size() == 3);
  CHECK((r[0].row == 2 && r[0].first == 0 && r[1].row == 4 && r[1].first == 1 && r[2].row == 5 &&
         r[2].first == 0));
}

TEST_CASE("faults: a checkpoint that lacks an entry is refused naming the file and the entry",
          "[faults][checkpoint]") {
  const std::string csv = trainer_csv(temp_dir("ckpt_data"));
  TrainOptions o = tiny_options(csv, temp_dir("ckpt_run"));
  train_mos::Trainer a(o);
  a.step();
  // A checkpoint payload as the trainers write it (trainer_state.hpp), less one entry.
  auto write = [&](const std::string& drop) {
    torch::serialize::OutputArchive root;
    if (drop != "config") root.write("config", c10::IValue(run_config(o).dump()));
    torch::serialize::OutputArchive model, opt;
    a.net()->save(model);
    a.optimizer().save(opt);
    if (drop != "model") root.write("model", model);
    if (drop != "optimizer") root.write("optimizer", opt);
    for (const char* k : {"stage_index", "epoch", "step_in_epoch"})
      if (drop != k) root.write(k, c10::IValue(int64_t{0}));
    if (drop != "global_step") root.write("global_step", c10::IValue(int64_t{0}));
    if (drop != "torch_rng")
      root.write("torch_rng", at::globalContext().defaultGenerator(torch::kCPU).get_state());
    if (drop != "masks") root.write("masks", mask_bytes(a.competitor()->twin().masks()));
    if (drop != "hardness") root.write("hardness", a.tracker().values());
    if (drop != "log_bytes") root.write("log_bytes", c10::IValue(int64_t{0}));
    root.write("world_size", c10::IValue(int64_t{1}));
    const std::string path = temp_dir("ckpt_" + drop) + "/checkpoint.pt";
    save_checked(root, path);
    TrainOptions r = o;
    r.resume = path;
    r.out = temp_dir("ckpt_resume");
    return r;
  };
  CHECK_NOTHROW(train_mos::Trainer(write("none")));  // the payload above is complete
  for (const char* entry :
       {"masks", "optimizer", "model", "hardness", "torch_rng", "global_step", "log_bytes"}) {
    INFO(entry);
    const TrainOptions r = write(entry);
    CHECK_THROWS_WITH(train_mos::Trainer(r),
                      Contains("checkpoint \"" + r.resume + "\" lacks the entry \"" + entry + "\""));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Item 1: full disks

TEST_CASE(
    "faults: a full disk while checkpointing is an error, the previous checkpoint stays, nothing is left",
    "[faults][disk]") {
  Tmpfs disk("disk_ckpt", "16m");
  if (!disk.mounted) OHEM_SKIP("cannot mount a tmpfs here (needs root): " << std::strerror(errno));
  const std::string csv = trainer_csv(temp_dir("disk_data"));
  const std::string out = disk.dir + "/run";
  {
    train_mos::Trainer t(tiny_options(csv, out));
    t.step();
    const std::string ckpt = t.checkpoint_path();
    t.save_checkpoint(ckpt);
    const std::string before = read_file(ckpt);
    REQUIRE(before.size() > 65536);
    t.step();
    disk.fill(65536);  // room for the log, not for a checkpoint
    CHECK_THROWS_WITH(t.save_checkpoint(ckpt), Contains("\"" + ckpt + "\"") &&
                                                   Contains("No space left on device") &&
                                                   Contains("bytes needed") && Contains("65536 available"));
    CHECK(read_file(ckpt) == before);  // the previous checkpoint, intact
    CHECK(no_temporaries(out));
    // results.json and other outputs: the same checked writes.
    const std::string json = out + "/results.json";
    write_file(json, "{}\n");
    CHECK_THROWS_WITH(atomic_write_text(json, std::string(200000, 'x')),
                      Contains("\"" + json + "\"") && Contains("200000 bytes needed"));
    CHECK(read_file(json) == "{}\n");
    CHECK(no_temporaries(out));
    // The library's own file: HardnessTracker::save_csv says what it needed too, and leaves nothing.
    ohem::HardnessTracker hardness(20000);
    hardness.update(torch::arange(20000), torch::rand({20000}, torch::kDouble));
    const std::string hard_csv = out + "/hardness.csv";
    CHECK_THROWS_WITH(hardness.save_csv(hard_csv),
                      Contains("ohem::HardnessTracker::save_csv: cannot write \"" + hard_csv + "\"") &&
                          Contains("No space left on device") && Contains("bytes needed") &&
                          Contains("available in"));
    CHECK_FALSE(fs::exists(hard_csv));
    CHECK(no_temporaries(out));
    CHECK(fs::exists(out + "/.ohem.lock"));  // held while the trainer lives
  }
  CHECK_FALSE(fs::exists(out + "/.ohem.lock"));
  disk.unfill();
  torch::serialize::InputArchive back;
  CHECK_NOTHROW(load_checked(back, out + "/checkpoint.pt"));  // still a valid checkpoint
}

TEST_CASE("faults: ohem-eval --gmad and study_report write all their files or none on a full disk",
          "[faults][disk]") {
  Tmpfs disk("disk_out", "1m");
  if (!disk.mounted) OHEM_SKIP("cannot mount a tmpfs here (needs root): " << std::strerror(errno));
  struct statvfs st {};
  REQUIRE(::statvfs(disk.dir.c_str(), &st) == 0);
  const uint64_t block = st.f_frsize;
  // gMAD: room for the pairs CSV (< 1 block), not for the HTML page too.
  const std::string dir = temp_dir("disk_gmad");
  write_file(dir + "/s.csv", "name,A,B\na.png,1,3\nb.png,1.1,1\nc.png,1.2,2\n");
  disk.fill(block);
  const std::string pairs = disk.dir + "/s.gmad.csv", html = disk.dir + "/s.gmad.html";
  const auto [rc, out] =
      eval({"--gmad", dir + "/s.csv", "--levels", "1", "--window", "1", "--pairs", pairs, "--html", html});
  INFO(out);
  CHECK(rc == 1);
  CHECK_THAT(out, Contains("No space left on device") && Contains("bytes needed"));
  CHECK_FALSE(fs::exists(pairs));
  CHECK_FALSE(fs::exists(html));
  CHECK(no_temporaries(disk.dir));
  disk.unfill();
  const auto [rc2, out2] =
      eval({"--gmad", dir + "/s.csv", "--levels", "1", "--window", "1", "--pairs", pairs, "--html", html});
  INFO(out2);
  CHECK(rc2 == 0);
  CHECK(fs::exists(pairs));
  CHECK(fs::exists(html));

  // study_report: no report.html.tmp, no half report.
  const std::string fixture = std::string(OHEM_TEST_DATA_DIR) + "/study_results_fixture";
  const nlohmann::json results = nlohmann::json::parse(read_file(fixture + "/results.json"));
  const std::string rdir = disk.dir + "/report";
  fs::create_directories(rdir);
  disk.fill(0);
  try {
    ohem_study::write_report(results, rdir, fixture);
    FAIL("write_report succeeded on a full disk");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(),
               Contains("report.html") && Contains("No space left on device") && Contains("bytes needed"));
  }
  CHECK(listing(rdir).empty());
  disk.unfill();
  ohem_study::write_report(results, rdir, fixture);
  CHECK(listing(rdir) == std::set<std::string>{"report.html", "report.md"});
}

// ---------------------------------------------------------------------------------------------------------------
// Items 2 and 3: ranks that disagree, restarts that resume by themselves

TEST_CASE("faults: the ranks' configurations are compared with the option table", "[faults][distributed]") {
  TrainOptions a, b;
  b.lr = 0.5;
  b.split_seed = 3;
  b.threads = 7;  // each process's own
  b.out = "elsewhere";
  b.quiet = true;
  const auto d = rank_differences(run_config(a), run_config(b), 1);
  REQUIRE(d.size() == 2);
  CHECK(d[0] == "--split-seed: rank 0 0, rank 1 3");
  CHECK(d[1] == "--lr: rank 0 0.0001, rank 1 0.5");
  // Every option of the table is compared but the per-process ones (also the runtime options that
  // change the collectives: --max-steps, --checkpoint-every, --eval-every-epoch, --resume).
  CHECK(rank_differences(run_config(a), run_config(a), 1).empty());
  for (const char* name :
       {"--max-steps", "--checkpoint-every", "--eval-every-epoch", "--resume", "--max-pixels"})
    CHECK_FALSE(per_process_option(name));
}

TEST_CASE("faults: --resume auto resumes when --out holds a checkpoint and starts afresh otherwise",
          "[faults][resume]") {
  const std::string csv = trainer_csv(temp_dir("auto_data"));
  auto params = [](train_mos::Trainer& t) {
    std::vector<torch::Tensor> v;
    for (const auto& p : t.net()->named_parameters()) v.push_back(p.value().detach().clone());
    return v;
  };
  TrainOptions straight = tiny_options(csv, temp_dir("auto_straight"));
  std::vector<torch::Tensor> want;
  {
    train_mos::Trainer t(straight);
    t.train();
    want = params(t);
  }
  // A run stopped after 4 of its 6 steps (mid epoch 2, a checkpoint there), then restarted with the same
  // command line: the result is the uninterrupted run's, bit for bit.
  TrainOptions o = tiny_options(csv, temp_dir("auto_run"));
  o.resume = "auto";
  {
    TrainOptions first = o;
    first.max_steps = 4;
    first.checkpoint_every = 4;
    train_mos::Trainer t(first);
    CHECK(t.global_step() == 0);  // fresh: no checkpoint yet
    t.train();
    CHECK(t.global_step() == 4);
  }
  {
    train_mos::Trainer t(o);
    CHECK(t.global_step() == 4);  // resumed
    t.train();
    const auto got = params(t);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(ohem_test::bit_identical(got[i], want[i]));
  }
  // Killed before its first checkpoint: --out holds a log only. A plain fresh run refuses it; auto starts
  // afresh.
  const std::string early = temp_dir("auto_early");
  write_file(early + "/log.jsonl", "{\"event\":\"start\"}\n");
  TrainOptions plain = tiny_options(csv, early);
  CHECK_THROWS_WITH(train_mos::Trainer(plain), Contains("already holds a run"));
  plain.resume = "auto";
  train_mos::Trainer t(plain);
  CHECK(t.global_step() == 0);
  CHECK(read_file(early + "/log.jsonl").find("\"config\"") != std::string::npos);  // a new log
}
