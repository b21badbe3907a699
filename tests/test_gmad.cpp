// gMAD and self-gMAD on constructed data where the right pairs are known, plus a brute-force reference.
#include "support.hpp"

#include <ohem/gmad.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

namespace {

// Builds scores where the answer is known. Defender range [0, 10], L = 5: width 2, centres 1, 3, 5, 7,
// 9; window 0.2 → each level takes |d − centre| <= 0.2. Per level l, five images inside the window
// and two decoys just outside it whose attacker scores are extreme (they must be ignored).
struct Constructed {
  std::vector<double> d, a;
  std::vector<int64_t> want_high, want_low;
  std::vector<double> want_gap;
};

Constructed constructed() {
  Constructed c;
  c.d = {0.0, 10.0};  // the range ends (outside every window)
  c.a = {50.0, -50.0};
  const double offsets[] = {-0.15, -0.05, 0.0, 0.1, 0.19};
  for (int l = 0; l < 5; ++l) {
    const double centre = 1.0 + 2.0 * l;
    const int64_t first = static_cast<int64_t>(c.d.size());
    for (int k = 0; k < 5; ++k) {
      c.d.push_back(centre + offsets[k]);
      // Attacker: image k = (l + 1) % 5 of the level is the best (score 10 + l), image (l + 3) % 5 the
      // worst (score -l); the others are in between.
      const int best = (l + 1) % 5, worst = (l + 3) % 5;
      c.a.push_back(k == best ? 10.0 + l : k == worst ? -1.0 * l : 1.0 + 0.1 * k);
    }
    c.want_high.push_back(first + (l + 1) % 5);
    c.want_low.push_back(first + (l + 3) % 5);
    c.want_gap.push_back(10.0 + l + l);
    c.d.push_back(centre + 0.25);  // decoys: outside the window
    c.a.push_back(100.0);
    c.d.push_back(centre - 0.21);
    c.a.push_back(-100.0);
  }
  return c;
}

}  // namespace

TEST_CASE("gmad picks the attacker's max and min inside each level's window", "[gmad]") {
  const auto c = constructed();
  const auto r = ohem::gmad(c.d, c.a);
  REQUIRE(r.pairs.size() == 5);
  CHECK(r.defender_min == 0.0);
  CHECK(r.defender_max == 10.0);
  CHECK(r.attacker_min == -100.0);
  CHECK(r.attacker_max == 100.0);
  for (int l = 0; l < 5; ++l) {
    INFO("level " << l);
    const auto& p = r.pairs[l];
    CHECK(p.level == l);
    CHECK(p.center == Approx(1.0 + 2.0 * l).epsilon(1e-15));
    CHECK(p.lower == Approx(0.8 + 2.0 * l).epsilon(1e-14));
    CHECK(p.upper == Approx(1.2 + 2.0 * l).epsilon(1e-14));
    CHECK(p.count == 5);
    REQUIRE(p.found());
    CHECK(p.high == c.want_high[l]);
    CHECK(p.low == c.want_low[l]);
    CHECK(p.attacker_high == c.a[p.high]);
    CHECK(p.defender_low == c.d[p.low]);
    CHECK(p.gap == c.want_gap[l]);
    CHECK(p.normalized_gap == Approx(c.want_gap[l] / 200.0).epsilon(1e-15));
  }
  // Mean of (10 + 2l) / 200 over l = 0..4 = 14 / 200.
  CHECK(r.mean_normalized_gap() == Approx(0.07).epsilon(1e-14));

  // window = 1: the levels are the bins [2l, 2l + 2) (the last one closed); now the decoys count.
  const auto all = ohem::gmad(c.d, c.a, ohem::GmadOptions().window(1.0));
  CHECK(all.pairs[0].count == 8);  // 0.0 + five + two decoys
  CHECK(all.pairs[4].count == 8);  // 10.0 + five + two decoys
  CHECK(all.pairs[2].count == 7);
  CHECK(all.pairs[2].gap == 200.0);
  CHECK(all.pairs[0].lower == 0.0);
  CHECK(all.pairs[4].upper == 10.0);
}

TEST_CASE("gmad tie rule, empty levels and both roles", "[gmad]") {
  // Level 0 (window [0, 5), L = 2, window 1): all attacker scores tied → high is the first image, low
  // the last. Level 1 holds a single image (index 3, d = 10) → no pair.
  const std::vector<double> d{0.0, 1.0, 2.0, 10.0}, a{7.0, 7.0, 7.0, 1.0};
  const auto r = ohem::gmad(d, a, ohem::GmadOptions().levels(2).window(1.0));
  CHECK(r.pairs[0].high == 0);
  CHECK(r.pairs[0].low == 2);
  CHECK(r.pairs[0].gap == 0.0);
  CHECK(r.pairs[1].count == 1);
  CHECK_FALSE(r.pairs[1].found());
  CHECK(r.pairs[1].high == -1);
  CHECK(r.mean_normalized_gap() == 0.0);

  // Roles: B = a defends. B's range [1, 7], L = 2 → bins [1, 4) and [4, 7]; image 3 alone in the first,
  // images 0..2 in the second, where A (= d) rates image 2 best and image 0 worst.
  const auto comp = ohem::gmad_competition(d, a, ohem::GmadOptions().levels(2).window(1.0));
  CHECK(comp.a_defends.pairs[0].high == 0);
  CHECK_FALSE(comp.b_defends.pairs[0].found());
  CHECK(comp.b_defends.pairs[1].high == 2);
  CHECK(comp.b_defends.pairs[1].low == 0);
  CHECK(comp.b_defends.pairs[1].gap == 2.0);
  CHECK(comp.b_defends.pairs[1].normalized_gap == Approx(0.2).epsilon(1e-15));
}

TEST_CASE("gmad matches a brute-force reference on random scores", "[gmad]") {
  const int64_t n = 5000, L = 7;
  const double window = 0.3;
  torch::manual_seed(3);
  const auto td = torch::randn({n}, torch::kDouble), ta = (td + torch::randn({n}, torch::kDouble)).round();
  const std::vector<double> d(td.data_ptr<double>(), td.data_ptr<double>() + n);
  const std::vector<double> a(ta.data_ptr<double>(), ta.data_ptr<double>() + n);  // rounded: many ties
  const auto r = ohem::gmad(td, ta, ohem::GmadOptions().levels(L).window(window));
  const double lo = *std::min_element(d.begin(), d.end()), hi = *std::max_element(d.begin(), d.end());
  const double w = (hi - lo) / L;
  for (int64_t l = 0; l < L; ++l) {
    INFO("level " << l);
    // O(n·L) reference: scan every image for every level.
    const double centre = lo + (l + 0.5) * w;
    int64_t count = 0, best = -1, worst = -1;
    for (int64_t i = 0; i < n; ++i) {
      if (std::abs(d[i] - centre) > window * w / 2) continue;
      ++count;
      if (best < 0 || a[i] > a[best]) best = i;
      if (worst < 0 || a[i] <= a[worst]) worst = i;
    }
    CHECK(r.pairs[l].count == count);
    CHECK(r.pairs[l].high == (count >= 2 ? best : -1));
    CHECK(r.pairs[l].low == (count >= 2 ? worst : -1));
  }
}

TEST_CASE("self_gmad runs both roles against each twin and the ensemble", "[gmad]") {
  const auto c = constructed();
  // Twin 0 is the constructed attacker; twin 1 is 2·d − a (its order inside each window is the reverse
  // of a's: a's steps of at least 1 outweigh 2·d's spread of 0.68); their mean is d itself, so in the
  // ensemble's pair `high` is the image at offset +0.19 (k = 4) and `low` the one at −0.15 (k = 0).
  std::vector<double> neg(c.a.size());
  for (size_t i = 0; i < c.a.size(); ++i) neg[i] = 2 * c.d[i] - c.a[i];
  const auto s = ohem::self_gmad(c.d, {c.a, neg});
  REQUIRE(s.twins.size() == 2);
  for (int l = 0; l < 5; ++l) {
    CHECK(s.twins[0].a_defends.pairs[l].high == c.want_high[l]);
    CHECK(s.twins[0].a_defends.pairs[l].low == c.want_low[l]);
    CHECK(s.twins[1].a_defends.pairs[l].high == c.want_low[l]);
    CHECK(s.twins[1].a_defends.pairs[l].low == c.want_high[l]);
    CHECK(s.ensemble.a_defends.pairs[l].high == c.want_high[l] - (l + 1) % 5 + 4);
    CHECK(s.ensemble.a_defends.pairs[l].low == c.want_high[l] - (l + 1) % 5);
    CHECK(s.ensemble.a_defends.pairs[l].gap == Approx(0.34).epsilon(1e-12));
  }
  // The tensor overload gives the same answer.
  const auto t = torch::stack({torch::tensor(c.a, torch::kDouble), torch::tensor(neg, torch::kDouble)});
  const auto st = ohem::self_gmad(c.d, t);
  CHECK(st.twins[1].b_defends.pairs[2].high == s.twins[1].b_defends.pairs[2].high);
  CHECK(st.twins[1].b_defends.pairs[2].low == s.twins[1].b_defends.pairs[2].low);
}

TEST_CASE("gmad errors name the argument and value", "[gmad]") {
  const std::vector<double> d{0, 1, 2}, a{0, 1};
  CHECK_THROWS_WITH(ohem::gmad(d, a), Catch::Contains("defender has 3 scores but attacker has 2"));
  CHECK_THROWS_WITH(ohem::gmad(std::vector<double>{2, 2, 2}, d),
                    Catch::Contains("defender's scores are constant (all 2)"));
  CHECK_THROWS_WITH(ohem::gmad(d, d, ohem::GmadOptions().window(0)),
                    Catch::Contains("window must be in (0, 1], got 0"));
  CHECK_THROWS_WITH(ohem::gmad(d, d, ohem::GmadOptions().levels(int64_t{9'000'000'000'000'000'000})),
                    Catch::Contains("GmadOptions::levels must be in [1, 1000000], got 9000000000000000000"));
  CHECK_THROWS_WITH(ohem::gmad(d, d, ohem::GmadOptions().levels(0)),
                    Catch::Contains("GmadOptions::levels must be in [1, 1000000], got 0"));
  CHECK_THROWS_WITH(ohem::gmad(d, std::vector<double>{0, NAN, 1}), Catch::Contains("attacker[1] is nan"));
  CHECK_THROWS_WITH(ohem::self_gmad(d, {d, a}), Catch::Contains("twin 1 has 2 scores but the model has 3"));
  CHECK_THROWS_WITH(ohem::self_gmad(d, std::vector<std::vector<double>>{}),
                    Catch::Contains("at least one twin"));
  CHECK_THROWS_WITH(ohem::self_gmad(d, torch::zeros({3})), Catch::Contains("shape [K, n], got [3]"));
}

TEST_CASE("gmad scales to a million images", "[gmad]") {
  const int64_t n = 1000000;
  const auto d = torch::rand({n}, torch::kDouble), a = torch::rand({n}, torch::kDouble);
  const ohem::ScoresRef dr(d), ar(a);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = ohem::gmad_competition(dr, ar, ohem::GmadOptions().levels(10));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "gmad_competition on 10^6 images, 10 levels: %.1f ms\n", ms);
  for (const auto& p : r.a_defends.pairs) {
    // Each window holds about n · 0.2 / 10 = 20 000 images; the attacker is uniform on [0, 1].
    CHECK(p.count == Approx(20000).epsilon(0.05));
    CHECK(p.gap > 0.999);
  }
}

// ---------------------------------------------------------------------------------------------------
// ohem-eval, run in-process through the same entry point as its main().

#include <ohem_eval/ohem_eval.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

std::string data_file(const std::string& name) {
  return std::string(OHEM_TEST_DATA_DIR) + "/metrics/" + name;
}

// A JSON report, parsed (nlohmann throws on invalid JSON or invalid UTF-8).
nlohmann::json report(const std::string& path) {
  return nlohmann::json::parse(ohem_test::read_file(path));
}

// Runs ohem-eval; returns {exit status, stdout + stderr}.
std::pair<int, std::string> eval(const std::vector<std::string>& args) {
  std::string out, err;
  const int rc = ohem_eval::run(args, out, err);
  return {rc, out + err};
}

}  // namespace

TEST_CASE("ohem-eval prints the table and writes the JSON report atomically", "[ohem-eval]") {
  const std::string json = ohem_test::temp_path("random_1000.json");
  const auto [rc, out] = eval({data_file("random_1000.csv"), "--bootstrap", "0", "--json", json});
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("SRCC") != std::string::npos);
  CHECK(out.find("PLCC(5p)") != std::string::npos);
  CHECK(out.find("1000 images") != std::string::npos);
  // Nothing but the report is left in the directory (no temporary).
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(json).parent_path())) {
    CHECK(e.path().filename().string().find(std::filesystem::path(json).filename().string() + ".tmp") ==
          std::string::npos);
  }
  const auto j = report(json);
  // scipy's values from expected.csv (random_1000 row); the JSON holds the shortest round-trip digits.
  const auto& o = j["overall"];
  CHECK(o["srcc"]["value"].get<double>() == Approx(0.9514068634068634).epsilon(1e-12));
  CHECK(o["krcc"]["value"].get<double>() == Approx(0.8067227227227227).epsilon(1e-12));
  CHECK(o["plcc"]["value"].get<double>() == Approx(0.9581335416294894).epsilon(1e-12));
  CHECK(o["logistic5"]["plcc"]["value"].get<double>() == Approx(0.9780574210414094).epsilon(1e-6));
  CHECK(o["logistic5"]["rmse"]["value"].get<double>() == Approx(0.3050958868350792).epsilon(1e-6));
  CHECK(o["logistic5"]["status"] == "Converged");
  CHECK(j["groups"].empty());
  CHECK(j["columns"]["mos"] == "mos");
}

TEST_CASE("ohem-eval reports groups and bootstrap intervals", "[ohem-eval]") {
  // Group "a": x = 1..6, mos = x (SRCC 1); group "b": reversed (SRCC -1). Names need quoting.
  std::string csv = "name,mos,prediction,group\r\n";
  for (int i = 1; i <= 6; ++i) csv += fmt::format("\"img {},a.png\",{},{},a\r\n", i, i, i);
  for (int i = 1; i <= 6; ++i) csv += fmt::format("img_{}_b.png,{},{},b\r\n", i, 7 - i, i);
  const std::string in = ohem_test::temp_path("groups.csv"), json = in + ".json";
  ohem_test::write_file(in, csv);
  const auto [rc, out] = eval({in, "--bootstrap", "20", "--seed", "3", "--json", json});
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("95% bootstrap intervals (20 resamples, seed 3)") != std::string::npos);
  CHECK(out.find("\na ") != std::string::npos);
  CHECK(out.find("\nb ") != std::string::npos);
  const auto j = report(json);
  CHECK(j["groups"]["a"]["srcc"]["value"] == 1.0);
  CHECK(j["groups"]["b"]["srcc"]["value"] == -1.0);
  CHECK(j["overall"]["srcc"].contains("lower"));
  CHECK(j["bootstrap"]["samples"] == 20);
}

TEST_CASE("ohem-eval names file, line and column of malformed CSV", "[ohem-eval]") {
  auto fails_with = [](const std::vector<std::string>& args, const std::string& message) {
    const auto [rc, out] = eval(args);
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find(message) != std::string::npos);
  };
  fails_with({data_file("bad_number.csv")},
             "bad_number.csv:3:15: column 3 (\"prediction\"): expected a finite number, got \"abc\"");
  fails_with({data_file("bad_fields.csv")}, "bad_fields.csv:3:19: expected 3 fields as in the header, got 4");
  fails_with({data_file("bad_quote.csv")}, "bad_quote.csv:3:1: unterminated quoted field");
  fails_with({data_file("bad_nan.csv")},
             "bad_nan.csv:2:11: column 2 (\"mos\"): expected a finite number, got \"nan\"");
  const std::string dir = ohem_test::temp_path("csv");
  std::filesystem::create_directories(dir);
  ohem_test::write_file(dir + "/short.csv", "name,mos,prediction\na.png,1,2\nb.png,3\n");
  fails_with({dir + "/short.csv"}, "short.csv:3:8: expected 3 fields as in the header, got 2");
  ohem_test::write_file(dir + "/empty.csv", "");
  fails_with({dir + "/empty.csv"}, "empty.csv: the file is empty");
  ohem_test::write_file(dir + "/two.csv", "name,mos\na,1\n");
  fails_with({dir + "/two.csv"}, "two.csv:1: no prediction column in the header");
  // A quoted field spanning lines: the error after it names its own line and column (never negative).
  ohem_test::write_file(dir + "/multi.csv", "name,mos,prediction\n\"a\nb\",1,2\nc,x,3\n");
  fails_with({dir + "/multi.csv"}, "multi.csv:4:3: column 2 (\"mos\"): expected a finite number, got \"x\"");
  fails_with({dir}, "is a directory");
  ohem_test::write_file(dir + "/quote.csv", "name,mos,prediction\na\"b,1,2\n");
  fails_with({dir + "/quote.csv"}, "quote.csv:2:2: quote inside an unquoted field");
  fails_with({dir + "/missing.csv"}, "missing.csv\": cannot open it: the file does not exist");
  fails_with({data_file("random_10.csv"), "--window", "2", "--gmad"}, "must be in (0, 1], got 2");
  fails_with({data_file("random_10.csv"), "--frobnicate"}, "--frobnicate");
  fails_with({data_file("random_10.csv"), "--bootstrap", "-1"}, "--bootstrap: Value -1 not in range");
  const auto [rc, out] = eval({"--help"});
  CHECK(rc == 0);
  CHECK(out.find("Usage: ohem-eval") != std::string::npos);
}

TEST_CASE("ohem-eval --gmad writes the pairs as CSV and a self-contained HTML page", "[ohem-eval]") {
  // The constructed scores of the gMAD tests: model A (the defender scores) and model B (the attacker).
  const auto c = constructed();
  const std::string dir = ohem_test::temp_path("gmad");
  std::filesystem::create_directories(dir + "/images");
  std::string csv = "name,modelA,modelB\n";
  for (size_t i = 0; i < c.d.size(); ++i) {
    csv += fmt::format("img_{}.png,{},{}\n", i, c.d[i], c.a[i]);
    ohem_test::write_file(dir + "/images/img_" + std::to_string(i) + ".png", "abc");  // base64 "YWJj"
  }
  ohem_test::write_file(dir + "/scores.csv", csv);
  const auto [rc, out] = eval({"--gmad", dir + "/scores.csv", "--image-root", "images"});
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("modelA defends, modelB attacks: mean normalized gap 0.0700") != std::string::npos);
  const std::string pairs = ohem_test::read_file(dir + "/scores.gmad.csv"),
                    html = ohem_test::read_file(dir + "/scores.gmad.html");
  for (int l = 0; l < 5; ++l) {
    const std::string hi = "img_" + std::to_string(c.want_high[l]) + ".png";
    const std::string lo = "img_" + std::to_string(c.want_low[l]) + ".png";
    INFO("level " << l);
    CHECK(pairs.find(fmt::format("modelA,modelB,{},", l)) != std::string::npos);
    CHECK(pairs.find("," + hi + "," + lo + ",") != std::string::npos);
    CHECK(html.find("<img src=\"images/" + hi + "\"") != std::string::npos);
    CHECK(html.find("<img src=\"images/" + lo + "\"") != std::string::npos);
  }
  CHECK(pairs.find("modelB,modelA,") != std::string::npos);  // the other role assignment
  CHECK(html.find("<script src") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("http") == std::string::npos);

  const auto [rc2, out2] =
      eval({"--gmad", dir + "/scores.csv", "--image-root", dir + "/images", "--embed-images", "--html",
            dir + "/e.html", "--pairs", dir + "/e.csv", "--levels", "2", "--window", "1"});
  INFO(out2);
  REQUIRE(rc2 == 0);
  CHECK(ohem_test::read_file(dir + "/e.html").find("<img src=\"data:image/png;base64,YWJj\"") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir + "/e.html.tmp"));
  // Images at native size (no thumbnail scaling), click to enlarge.
  CHECK(html.find("max-width:100%") == std::string::npos);
  CHECK(html.find("zoom-in") != std::string::npos);
}

namespace {

// 60 images: mos on 1..5, prediction = a noisy increasing function of it, group g0/g1.
struct Table {
  std::vector<std::string> name, group;
  std::vector<double> mos, pred;
};
Table small_table() {
  Table t;
  uint64_t s = 7;
  for (int i = 0; i < 60; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const double u = static_cast<double>(s >> 11) * 0x1.0p-53;
    t.name.push_back("img_" + std::to_string(i) + ".png");
    t.mos.push_back(1 + 4 * (i + 0.5) / 60);
    t.pred.push_back(std::tanh((t.mos.back() - 3) / 1.5) + 0.3 * (u - 0.5));
    t.group.push_back(i % 2 ? "g1" : "g0");
  }
  return t;
}

// Writes the table with the given column order and header (empty: no header), scaling pred/mos.
std::string write_table(const Table& t, const std::string& header, const std::vector<std::string>& order,
                        double pred_scale = 1, double mos_scale = 1) {
  const std::string path = ohem_test::temp_path("eval_table.csv");
  std::string csv = header.empty() ? "" : header + "\n";
  for (size_t i = 0; i < t.name.size(); ++i) {
    std::string row;
    for (const auto& c : order) {
      const std::string v = c == "name"    ? t.name[i]
                            : c == "group" ? t.group[i]
                            : c == "mos"   ? fmt::format("{:.17g}", t.mos[i] * mos_scale)
                                           : fmt::format("{:.17g}", t.pred[i] * pred_scale);
      row += (row.empty() ? "" : ",") + v;
    }
    csv += row + "\n";
  }
  ohem_test::write_file(path, csv);
  return path;
}

nlohmann::json eval_json(const std::vector<std::string>& args) {
  const std::string json = ohem_test::temp_path("eval.json");
  std::vector<std::string> a = args;
  a.insert(a.end(), {"--json", json, "--progress", "off"});
  const auto [rc, out] = eval(a);
  INFO(out);
  REQUIRE(rc == 0);
  return report(json);
}

}  // namespace

TEST_CASE("ohem-eval reads columns by header name, in any order, with aliases", "[ohem-eval]") {
  const Table t = small_table();
  const auto base =
      eval_json({write_table(t, "name,mos,prediction,group", {"name", "mos", "prediction", "group"}),
                 "--bootstrap", "0"});
  // Swapped and renamed (the old reader took column 2 as MOS and silently swapped them here).
  const auto swapped =
      eval_json({write_table(t, "Image,Prediction,MOS,Distortion", {"name", "prediction", "mos", "group"}),
                 "--bootstrap", "0"});
  CHECK(swapped["overall"] == base["overall"]);
  CHECK(swapped["groups"] == base["groups"]);
  CHECK(swapped["columns"]["prediction"] == "Prediction");
  const auto aliases =
      eval_json({write_table(t, " pred , score ,file", {"prediction", "mos", "name"}), "--bootstrap", "0"});
  CHECK(aliases["overall"] == base["overall"]);
  // Headerless: an error unless told; then the documented order, or --columns.
  const std::string bare = write_table(t, "", {"name", "prediction", "mos"});
  auto [rc, out] = eval({bare, "--bootstrap", "0", "--no-json"});
  CHECK(rc == 1);
  CHECK(out.find("no name column in the header") != std::string::npos);
  CHECK(out.find("--no-header") != std::string::npos);
  const auto cols = eval_json({bare, "--bootstrap", "0", "--no-header", "--columns", "name,prediction,mos"});
  CHECK(cols["overall"] == base["overall"]);
  const auto plain =
      eval_json({write_table(t, "", {"name", "mos", "prediction"}), "--bootstrap", "0", "--no-header"});
  CHECK(plain["overall"] == base["overall"]);
  // Unknown, missing and ambiguous columns are errors naming them.
  std::tie(rc, out) = eval({write_table(t, "name,mos,prediction,std", {"name", "mos", "prediction", "group"}),
                            "--no-json", "--bootstrap", "0"});
  CHECK(rc == 1);
  CHECK(out.find("unknown column 4 \"std\"") != std::string::npos);
  std::tie(rc, out) = eval({write_table(t, "name,mos,x", {"name", "mos", "prediction"}), "--no-json"});
  CHECK(rc == 1);
  CHECK(out.find("no prediction column") != std::string::npos);
  std::tie(rc, out) = eval({write_table(t, "name,mos,score", {"name", "mos", "prediction"}), "--no-json"});
  CHECK(rc == 1);
  CHECK(out.find("ambiguous header") != std::string::npos);
}

TEST_CASE("ohem-eval: duplicate names, a group named overall, non-UTF-8 text", "[ohem-eval]") {
  const std::string in = ohem_test::temp_path("dup.csv");
  ohem_test::write_file(in, "name,mos,prediction\na.png,1,1.5\nb.png,2,2.2\na.png,3,2.9\nc.png,4,4.4\n");
  auto [rc, out] = eval({in, "--no-json", "--bootstrap", "0"});
  CHECK(rc == 1);
  CHECK(out.find(":4:1: image \"a.png\" appears again (first on line 2)") != std::string::npos);
  std::tie(rc, out) = eval({in, "--no-json", "--bootstrap", "0", "--allow-duplicates"});
  CHECK(rc == 0);
  CHECK(out.find("warning: ") != std::string::npos);

  std::string csv = "name,mos,prediction,group\n";
  for (int i = 0; i < 8; ++i)
    csv += fmt::format("i{}\xff.png,{},{},{}\n", i, i, i * i, i % 2 ? "overall" : "g\xfe");
  ohem_test::write_file(in, csv);
  const auto j = eval_json({in, "--bootstrap", "0"});  // parses: valid UTF-8
  CHECK(j["overall"]["n"] == 8);
  CHECK(j["groups"]["overall"]["n"] == 4);
  CHECK(j["groups"].size() == 2);
  std::tie(rc, out) = eval({in, "--no-json", "--bootstrap", "0"});
  CHECK(out.find("per group (column \"group\"):") != std::string::npos);
}

TEST_CASE("ohem-eval: extreme but finite values give the metrics of the unscaled data", "[ohem-eval]") {
  const Table t = small_table();
  const std::vector<std::string> order{"name", "mos", "prediction"};
  const auto base = eval_json({write_table(t, "name,mos,prediction", order), "--bootstrap", "20"});
  for (auto [ps, ms] : {std::pair{1e300, 1.0}, {1e-200, 1e200}, {1.0, 1e-200}}) {
    INFO("scales " << ps << " " << ms);
    const auto j = eval_json({write_table(t, "name,mos,prediction", order, ps, ms), "--bootstrap", "20"});
    for (const char* k : {"srcc", "krcc", "plcc"}) {
      CHECK(j["overall"][k]["value"].get<double>() ==
            Approx(base["overall"][k]["value"].get<double>()).epsilon(1e-12));
    }
    for (const char* m : {"logistic4", "logistic5"}) {
      const auto& f = j["overall"][m];
      REQUIRE(f["plcc"]["value"].is_number());
      REQUIRE(f["rmse"]["value"].is_number());
      REQUIRE(f["rmse"]["upper"].is_number());
      CHECK(f["plcc"]["value"].get<double>() ==
            Approx(base["overall"][m]["plcc"]["value"].get<double>()).epsilon(1e-5));
      CHECK(f["rmse"]["value"].get<double>() / ms ==
            Approx(base["overall"][m]["rmse"]["value"].get<double>()).epsilon(1e-5));
    }
  }
}

TEST_CASE("ohem-eval: outputs are checked before any work, inputs are never overwritten", "[ohem-eval]") {
  const std::string dir = ohem_test::temp_path("outputs");
  std::filesystem::create_directories(dir);
  const std::string in = dir + "/x.csv";
  ohem_test::write_file(in, ohem_test::read_file(data_file("random_10.csv")));
  const std::string before = ohem_test::read_file(in);
  auto refuses = [&](const std::vector<std::string>& args, const std::string& message) {
    const auto [rc, out] = eval(args);
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find(message) != std::string::npos);
    CHECK(out.find("resamples") == std::string::npos);  // failed before the computation started
    CHECK(ohem_test::read_file(in) == before);
  };
  refuses({in, "--json", in}, "is the input file");
  refuses({in, "--json", dir + "/./x.csv"}, "is the input file");
  std::filesystem::create_symlink(in, dir + "/link.csv");
  refuses({dir + "/link.csv", "--json", in}, "is the input file");
  refuses({in, "--json", dir + "/link.csv"}, "is the input file");
  std::filesystem::create_hard_link(in, dir + "/hard.csv");
  refuses({in, "--json", dir + "/hard.csv"}, "is the input file");
  refuses({"--gmad", in, "--pairs", in}, "--pairs");
  refuses({"--gmad", in, "--html", dir + "/link.csv"}, "--html");
  refuses({in, "--json", dir + "/missing/r.json", "--bootstrap", "1000000"}, "does not exist");
  refuses({in, "--json", dir}, "is a directory");
  refuses({"--gmad", in, "--pairs", dir + "/p.csv", "--html", dir + "/./p.csv"}, "name the same file");
  // Huge or out-of-range arguments are rejected with messages naming the option.
  refuses({in, "--bootstrap", "1e11"}, "--bootstrap");
  refuses({in, "--bootstrap", "100000000000"}, "--bootstrap");
  refuses({"--gmad", in, "--levels", "9000000000000000000"}, "--levels");
  refuses({in, "--threads", "100000"}, "--threads");
  refuses({in, "--threads", "0"}, "--threads");
  refuses({in, "--confidence", "1"}, "--confidence");
  CHECK_FALSE(std::filesystem::exists(dir + "/missing"));
}

TEST_CASE("ohem-eval: the bootstrap gives the same intervals on any number of threads", "[ohem-eval]") {
  const std::string in = data_file("random_1000.csv");
  const auto one = eval_json({in, "--bootstrap", "40", "--seed", "9", "--threads", "1"});
  const auto three = eval_json({in, "--bootstrap", "40", "--seed", "9", "--threads", "3"});
  const auto eight = eval_json({in, "--bootstrap", "40", "--seed", "9", "--threads", "8"});
  CHECK(one["overall"] == three["overall"]);
  CHECK(one["overall"] == eight["overall"]);
  CHECK(one["overall"]["srcc"]["lower"].get<double>() < one["overall"]["srcc"]["upper"].get<double>());
  // The default resample count is bounded for large inputs and announced up front.
  CHECK(ohem_eval::default_bootstrap(1000) == 1000);
  CHECK(ohem_eval::default_bootstrap(1'000'000) == 100);
  CHECK(ohem_eval::default_bootstrap(100'000) == 200);
  const auto [rc, out] = eval({in, "--no-json", "--threads", "2", "--progress", "off"});
  CHECK(rc == 0);
  CHECK(out.find("bootstrap: 1000 resamples (default for this many images; --bootstrap N to choose) on 2 "
                 "thread(s)") != std::string::npos);
}
