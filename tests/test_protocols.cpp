// Tests of the KADID-10k protocol's split generator (examples/toolkit/kadid_protocol.hpp) on synthetic
// KADID-format metadata; every expected count is derived by hand in the comments.
#include "support.hpp"

#include <toolkit/kadid_protocol.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace ohem_examples;

namespace {

// A dmos.csv of `contents` references × `types` distortion types × `levels` levels (I01_01_01.png ...),
// read without image files.
Dataset synthetic_kadid(int contents, int types, int levels) {
  const std::string path = ohem_test::temp_path("kadid") + ".csv";
  std::ofstream out(path);
  out << "dist_img,ref_img,dmos,var\n";
  for (int c = 1; c <= contents; ++c)
    for (int t = 1; t <= types; ++t)
      for (int l = 1; l <= levels; ++l)
        out << fmt::format("I{:02d}_{:02d}_{:02d}.png,I{:02d}.png,{},0.1\n", c, t, l, c,
                           1.0 + (c * 7 + t * 3 + l) % 40 * 0.1);
  out.close();
  return read_kadid10k(path, "images", ReadOptions().check_images(false));
}

int64_t level_of(const Sample& s) {
  return std::stoll(s.name.substr(7, 2));
}

}  // namespace

TEST_CASE("KADID-10k protocol: the counts of the official split", "[protocol]") {
  const Dataset d = synthetic_kadid(81, 25, 5);  // 10,125 images, as KADID-10k
  REQUIRE(d.size() == 10125);
  const KadidSplit s = split_kadid10k(d, 0);
  // 65 training contents; each keeps 8 head types × 5 levels + 8 mid × 3 + 9 tail × 1 = 73 images.
  CHECK(s.train_contents.size() == 65);
  CHECK(s.test_contents.size() == 16);
  CHECK(s.split.train.size() == 65 * 73);  // 4,745
  // Test: every image of the 16 test contents, 16 × 125 = 2,000: head 16 × 8 × 5 = 640, mid 640, tail
  // 16 × 9 × 5 = 720.
  CHECK(s.split.test.size() == 2000);
  CHECK(s.test_groups.at("head").size() == 640);
  CHECK(s.test_groups.at("mid").size() == 640);
  CHECK(s.test_groups.at("tail").size() == 720);
  std::map<std::string, int> groups;
  for (const auto& [type, group] : s.type_group) ++groups[group];
  CHECK(groups == std::map<std::string, int>{{"head", 8}, {"mid", 8}, {"tail", 9}});

  // Per training content and type: head all 5 levels, mid 3 distinct, tail 1; no test content trains.
  const std::set<std::string> test_contents(s.test_contents.begin(), s.test_contents.end());
  std::map<std::pair<std::string, std::string>, std::set<int64_t>> kept;
  for (int64_t i : s.split.train) {
    const Sample& x = d.samples[static_cast<size_t>(i)];
    CHECK(test_contents.count(x.group) == 0);
    kept[{x.group, x.type}].insert(level_of(x));
  }
  CHECK(kept.size() == 65 * 25);
  std::set<std::set<int64_t>> mid_choices;
  for (const auto& [cell, levels] : kept) {
    const std::string& group = s.type_group.at(cell.second);
    CHECK(levels.size() == (group == "head" ? 5u : group == "mid" ? 3u : 1u));
    if (group == "mid") mid_choices.insert(levels);
  }
  CHECK(mid_choices.size() > 1);  // drawn per content and type, not one choice for all
  for (int64_t i : s.split.test) CHECK(test_contents.count(d.samples[static_cast<size_t>(i)].group) == 1);

  // The balanced variant: every level of every type, 65 × 125 = 8,125; the same contents and groups.
  const KadidSplit b = split_kadid10k(d, 0, KadidProtocolOptions().long_tailed(false));
  CHECK(b.split.train.size() == 8125);
  CHECK(b.train_contents == s.train_contents);
  CHECK(b.type_group == s.type_group);
  CHECK(b.split.test == s.split.test);
}

TEST_CASE("KADID-10k protocol: seeded, and each seed draws its own contents and groups", "[protocol]") {
  const Dataset d = synthetic_kadid(81, 25, 5);
  const KadidSplit a = split_kadid10k(d, 3), again = split_kadid10k(d, 3), other = split_kadid10k(d, 4);
  CHECK(a.split.train == again.split.train);
  CHECK(a.split.test == again.split.test);
  CHECK(a.type_group == again.type_group);
  CHECK(a.train_contents != other.train_contents);
  CHECK(a.type_group != other.type_group);
}

TEST_CASE("KADID-10k protocol: smaller data with the numbers as options, and errors", "[protocol]") {
  // 5 contents × 4 types × 5 levels; 3 contents train; 1 head, 1 mid (3 levels), 2 tail (1 level):
  // train 3 × (5 + 3 + 1 + 1) = 30; test 2 × 20 = 40: head 10, mid 10, tail 20.
  const Dataset d = synthetic_kadid(5, 4, 5);
  const auto o = KadidProtocolOptions().train_contents(3).head_types(1).mid_types(1);
  const KadidSplit s = split_kadid10k(d, 1, o);
  CHECK(s.split.train.size() == 30);
  CHECK(s.split.test.size() == 40);
  CHECK(s.test_groups.at("head").size() == 10);
  CHECK(s.test_groups.at("mid").size() == 10);
  CHECK(s.test_groups.at("tail").size() == 20);
  // The defaults need more contents and types than this data has: errors that say so.
  CHECK_THROWS_WITH(split_kadid10k(d, 1),
                    Catch::Contains("65 reference contents") && Catch::Contains("has 5"));
  CHECK_THROWS_WITH(split_kadid10k(d, 1, KadidProtocolOptions().train_contents(3)),
                    Catch::Contains("8 + 8 distortion types") && Catch::Contains("has 4 types"));
  // Too few levels for the mid group's 3.
  const Dataset two = synthetic_kadid(5, 4, 2);
  CHECK_THROWS_WITH(split_kadid10k(two, 1, o), Catch::Contains("keeps 3 level(s) of each mid type"));
}
