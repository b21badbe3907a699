#pragma once
/// @file
/// Study v2's data design (issue 26; docs/study.md "Study v2: registered design"), behind
/// `study --design v2`: which photographs start the shared weights W, which train the three arms, which
/// validate and which test, and the tiered long tail of each seed. Pure functions of the dataset and the
/// seed.

#include <toolkit/datasets.hpp>
#include <toolkit/synthetic.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ohem_study::v2 {

using ohem_examples::Dataset;

/// A distortion type's place in one seed's training mix.
enum class Tier { Head, Mid, Tail };

/// The tiers rotate over this many seeds: each of the three type pairs is the tail once per rotation.
constexpr int64_t kRotation = 3;

/// Returns the tier's name ("head", "mid", "tail").
inline const char* tier_name(Tier t) {
  return t == Tier::Head ? "head" : t == Tier::Mid ? "mid" : "tail";
}

/// Returns the distortion levels (1..5) a type of tier `t` keeps, for every reference.
///
/// Head: all five. Mid: 1, 3 and 5 -- the mildest, the middle and the strongest, so a mid type is still
/// seen over its whole range, only more coarsely. Tail: 3 alone -- the middle level, equally far from both
/// ends, so the balanced test asks for the other four levels of a tail type on either side of the one seen
/// (one level per reference, as the official tiered long tail keeps a single image of its rarest types).
/// The official protocol draws the kept levels per content and type (toolkit/kadid_protocol.hpp); fixed
/// levels keep the three arms' data the same by construction and make a tail type's level a known one.
inline const std::vector<int>& tier_levels(Tier t) {
  static const std::vector<int> head = {1, 2, 3, 4, 5}, mid = {1, 3, 5}, tail = {3};
  return t == Tier::Head ? head : t == Tier::Mid ? mid : tail;
}

/// Returns the tier of each distortion type (demo::distortion_names() order) in seed `seed`'s mix.
///
/// The six types form three fixed pairs by position, (t, t + 3): white_noise + contrast, gaussian_blur +
/// pixelate, jpeg + impulse_noise; the pair r = seed mod 3 is the head, r + 1 the mid, r + 2 the tail
/// (mod 3). So over any kRotation consecutive seeds every type is a head, a mid and a tail type once, and
/// the rarity of a type is no longer confounded with the type (issue 26, flaw 4). The two noise types
/// are in different pairs: impulse noise is never rare together with the white noise it resembles.
inline std::vector<Tier> tiers(int64_t seed) {
  const auto types = static_cast<int64_t>(demo::distortion_names().size());
  TORCH_CHECK(types == 2 * kRotation, "study v2: the tiers need ", 2 * kRotation, " distortion types, got ",
              types);
  const int64_t r = ((seed % kRotation) + kRotation) % kRotation;
  std::vector<Tier> out(static_cast<size_t>(types));
  for (int64_t t = 0; t < types; ++t) {
    const int64_t pair = t % kRotation;
    const int64_t place = ((pair - r) % kRotation + kRotation) % kRotation;  // 0 head, 1 mid, 2 tail
    out[static_cast<size_t>(t)] = place == 0 ? Tier::Head : place == 1 ? Tier::Mid : Tier::Tail;
  }
  return out;
}

/// Returns the types (names) of tier `tier` in seed `seed`'s mix.
inline std::vector<std::string> types_of(int64_t seed, Tier tier) {
  const std::vector<Tier> t = tiers(seed);
  std::vector<std::string> out;
  for (size_t k = 0; k < t.size(); ++k)
    if (t[k] == tier) out.push_back(demo::distortion_names()[k]);
  return out;
}

/// Returns the images of `indices` that seed `seed`'s tiered long tail keeps: every reference keeps its
/// head types at all levels, its mid types at levels 1, 3, 5 and its tail types at level 3 alone.
inline std::vector<int64_t> tiered(const Dataset& all, const std::vector<int64_t>& indices, int64_t seed) {
  const std::vector<Tier> t = tiers(seed);
  std::map<std::string, Tier> tier_of;
  for (size_t k = 0; k < t.size(); ++k) tier_of[demo::distortion_names()[k]] = t[k];
  std::vector<int64_t> out;
  for (int64_t i : indices) {
    const auto& s = all.samples[static_cast<size_t>(i)];
    const auto it = tier_of.find(s.type);
    TORCH_CHECK(it != tier_of.end(), "study v2: image ", s.path, " has the unknown distortion type \"",
                s.type, "\"");
    const std::vector<int>& keep = tier_levels(it->second);
    if (std::find(keep.begin(), keep.end(), demo::distortion_level(s.path)) != keep.end()) out.push_back(i);
  }
  return out;
}

/// The photographs of one seed and the images each part uses (indices into the dataset).
struct Split {
  std::vector<std::string> pool, train, val, test;  ///< photograph names (the dataset's groups)
  std::vector<int64_t> pool_images;                 ///< W's training: the pool photographs, tiered
  std::vector<int64_t> train_images;                ///< the arms' training: the training photographs, tiered
  std::vector<int64_t> val_images;   ///< validation (tuning): the validation photographs, balanced
  std::vector<int64_t> test_images;  ///< the test: the test photographs, balanced (every type and level)
};

/// Splits seed `seed`'s photographs, content-disjoint: the test photographs are v1's for the same seed
/// (ohem_examples::split_by_group with `train_fraction`); of the others, a seeded `pool_fraction` is
/// the pool on which the shared start W is trained, and of the rest a seeded `val_fraction` validates
/// (for tuning; never the test photographs); the remaining photographs train the three arms. Each part
/// keeps at least one photograph. The pool and the arms' training images follow the seed's tiered long
/// tail; validation and test keep every type and level.
///
/// W is trained on a pool of photographs kept out of the arms' training and the test rather than on the
/// training photographs: it stands in for a pretrained network, which has never seen the images it is
/// fine-tuned on. A W trained on the arms' own images would start fine-tuning with those images already
/// fitted, and leave the twin nothing to find hard that W had not already memorised. The pool has the
/// same tiered mix as the arms' training, so W knows the tail types as little as the arms' data shows
/// them: a W that had seen them plentifully would leave nothing rare to mine.
inline Split split(const Dataset& all, double train_fraction, double pool_fraction, double val_fraction,
                   int64_t seed) {
  TORCH_CHECK(pool_fraction > 0 && pool_fraction < 1, "study v2: --pool-fraction must be in (0, 1), got ",
              pool_fraction);
  TORCH_CHECK(val_fraction > 0 && val_fraction < 1, "study v2: --val-fraction must be in (0, 1), got ",
              val_fraction);
  const ohem_examples::Split by_content =
      ohem_examples::split_by_group(all, train_fraction, static_cast<uint64_t>(seed));
  std::set<std::string> names;
  for (int64_t i : by_content.train) names.insert(all.samples[static_cast<size_t>(i)].group);
  std::vector<std::string> rest(names.begin(), names.end());
  const auto m = static_cast<int64_t>(rest.size());
  TORCH_CHECK(m >= 3,
              "study v2: the pool, the training and the validation photographs need at least 3 "
              "photographs outside the test, got ",
              m, " (more photographs or a higher --train-fraction)");
  std::mt19937_64 rng(static_cast<uint64_t>(seed) ^ 0x706F6F6C76616CULL);  // "poolval": not the test's draws
  ohem_examples::seeded_shuffle(rest, rng);
  const int64_t pool = std::clamp<int64_t>(std::llround(pool_fraction * static_cast<double>(m)), 1, m - 2);
  const int64_t train = m - pool;
  const int64_t val =
      std::clamp<int64_t>(std::llround(val_fraction * static_cast<double>(train)), 1, train - 1);
  Split s;
  s.pool.assign(rest.begin(), rest.begin() + pool);
  s.val.assign(rest.begin() + pool, rest.begin() + pool + val);
  s.train.assign(rest.begin() + pool + val, rest.end());
  std::set<std::string> test_names;
  for (int64_t i : by_content.test) test_names.insert(all.samples[static_cast<size_t>(i)].group);
  s.test.assign(test_names.begin(), test_names.end());
  for (auto* v : {&s.pool, &s.val, &s.train}) std::sort(v->begin(), v->end());
  const std::set<std::string> pool_set(s.pool.begin(), s.pool.end()), val_set(s.val.begin(), s.val.end());
  std::vector<int64_t> pool_all, train_all;
  for (int64_t i : by_content.train) {
    const std::string& g = all.samples[static_cast<size_t>(i)].group;
    (pool_set.count(g) ? pool_all : val_set.count(g) ? s.val_images : train_all).push_back(i);
  }
  s.pool_images = tiered(all, pool_all, seed);
  s.train_images = tiered(all, train_all, seed);
  s.test_images = by_content.test;
  return s;
}

}  // namespace ohem_study::v2
