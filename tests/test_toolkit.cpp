// Tests of the toolkit (examples/toolkit, docs/toolkit.md): images, transforms, dataset readers, splits and
// pairs, backbones, the JSON-lines log. The trainers are tested in test_trainers.cpp.
#include "support_toolkit.hpp"

#include <toolkit/backbones.hpp>
#include <toolkit/datasets.hpp>
#include <toolkit/image.hpp>
#include <toolkit/io.hpp>
#include <toolkit/transforms.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ohem_examples;
using Catch::Matchers::Contains;
using ohem_test::pattern;
using ohem_test::read_file;
using ohem_test::temp_dir;
using ohem_test::to_script;
using ohem_test::write_file;
using ohem_test::write_images;

// ---------------------------------------------------------------------------------------------------------------
// Images and transforms

TEST_CASE("images: PNG and BMP round-trip exactly, JPEG closely", "[examples]") {
  const std::string dir = temp_dir("img");
  const torch::Tensor img = pattern(9, 11, 3);
  for (const char* ext : {".png", ".bmp"}) {
    const std::string p = (fs::path(dir) / (std::string("a") + ext)).string();
    save_image(p, img);
    CHECK(ohem_test::bit_identical(load_image(p), img));
  }
  const torch::Tensor smooth = torch::full({16, 16, 3}, 120, torch::kUInt8);
  const std::string jpg = (fs::path(dir) / "a.jpg").string();
  save_image(jpg, smooth, 95);
  const torch::Tensor back = load_image(jpg);
  CHECK(back.sizes() == smooth.sizes());
  CHECK((back.to(torch::kInt) - 120).abs().max().item<int>() <= 2);
  // Grey PNGs are expanded to RGB.
  const std::string grey = (fs::path(dir) / "g.png").string();
  unsigned char px[6] = {0, 50, 100, 150, 200, 250};
  REQUIRE(stbi_write_png(grey.c_str(), 3, 2, 1, px, 3) != 0);
  const torch::Tensor g = load_image(grey);
  CHECK(g.sizes() == torch::IntArrayRef({2, 3, 3}));
  CHECK(g[1][2][0].item<int>() == 250);
  CHECK(g[1][2][2].item<int>() == 250);
}

TEST_CASE("images: missing, corrupt and unwritable files are errors naming the file", "[examples]") {
  const std::string dir = temp_dir("img_bad");
  const std::string missing = (fs::path(dir) / "nope.png").string();
  CHECK_THROWS_WITH(load_image(missing), Contains("nope.png") && Contains("does not exist"));
  const std::string corrupt = (fs::path(dir) / "corrupt.jpg").string();
  write_file(corrupt, "this is not a JPEG file");
  CHECK_THROWS_WITH(load_image(corrupt), Contains("corrupt.jpg") && Contains("cannot decode"));
  CHECK_THROWS_WITH(save_image((fs::path(dir) / "x.gif").string(), pattern(2, 2, 0)),
                    Contains("unknown extension"));
  CHECK_THROWS_WITH(save_image((fs::path(dir) / "x.png").string(), torch::zeros({2, 2})),
                    Contains("[H, W, 3]"));
  CHECK_THROWS_WITH(jpeg_roundtrip(pattern(4, 4, 0), 0), Contains("quality"));
}

TEST_CASE("transforms: shapes, crops, flip and ImageNet normalisation", "[examples]") {
  const torch::Tensor img = torch::rand({3, 40, 60});
  CHECK(resize_short_side(img, 20).sizes() == torch::IntArrayRef({3, 20, 30}));
  CHECK(resize_short_side(img.transpose(1, 2), 20).sizes() == torch::IntArrayRef({3, 30, 20}));
  // Resizing a constant image keeps it constant (antialiased shrink and enlargement).
  CHECK(ohem_test::close(resize(torch::full({3, 40, 60}, 0.25), 13, 17), torch::full({3, 13, 17}, 0.25), 0,
                         1e-6));
  CHECK(ohem_test::close(resize(torch::full({3, 4, 6}, 0.5), 9, 11), torch::full({3, 9, 11}, 0.5), 0, 1e-6));
  CHECK(torch::equal(center_crop(img, 10), img.slice(1, 15, 25).slice(2, 25, 35)));
  CHECK(torch::equal(hflip(img).select(2, 0), img.select(2, 59)));
  std::mt19937_64 a(7), b(7);
  const torch::Tensor ca = random_crop(img, 16, a), cb = random_crop(img, 16, b);
  CHECK(torch::equal(ca, cb));
  CHECK(ca.sizes() == torch::IntArrayRef({3, 16, 16}));
  CHECK_THROWS_WITH(random_crop(img, 41, a), Contains("smaller than the crop"));
  CHECK_THROWS_WITH(center_crop(img, 41), Contains("smaller than the crop"));
  // Normalisation: (x - mean) / std per channel, checked on a hand value.
  const torch::Tensor n = normalize_imagenet(torch::full({3, 1, 1}, 0.5));
  CHECK(n[0][0][0].item<double>() == Approx((0.5 - 0.485) / 0.229).epsilon(1e-6));
  CHECK(n[2][0][0].item<double>() == Approx((0.5 - 0.406) / 0.225).epsilon(1e-6));
  // uint8 <-> float round trip is exact.
  const torch::Tensor u = pattern(5, 6, 1);
  CHECK(torch::equal(to_uint8_hwc(to_float_chw(u)), u));
}

// ---------------------------------------------------------------------------------------------------------------
// Readers (the CSV reader itself: tests/test_csv_files.cpp)

TEST_CASE("readers: KonIQ-10k, KADID-10k, LIVE Challenge, SPAQ and generic fixtures", "[examples]") {
  const std::string dir = temp_dir("readers");
  const auto names = write_images(dir, 4);
  const std::string images = (fs::path(dir) / "images").string();

  SECTION("KonIQ-10k") {
    const std::string p = (fs::path(dir) / "koniq10k_scores_and_distributions.csv").string();
    write_file(p,
               "\"image_name\",\"c1\",\"c2\",\"c3\",\"c4\",\"c5\",\"c_total\",\"MOS\",\"SD\",\"MOS_zscore\"\n"
               "\"img0.png\",0,1,10,80,9,100,3.97,0.52,72.5\n"
               "\"img1.png\",5,30,50,14,1,100,2.76,0.81,41.25\n");
    const Dataset d = read_koniq10k(p, images);
    REQUIRE(d.size() == 2);
    CHECK(d.samples[0].path == (fs::path(images) / "img0.png").string());
    CHECK(d.samples[0].mos == 3.97);
    CHECK(d.samples[1].std == 0.81);
    CHECK(d.samples[1].line == 3);
    CHECK(d.samples[0].group != d.samples[1].group);
    const Dataset z = read_koniq10k(p, images, {}, /*use_zscore=*/true);
    CHECK(z.samples[1].mos == 41.25);
    CHECK(z.samples[1].std == Approx(0.81 * 25));
  }
  SECTION("KADID-10k") {
    fs::copy_file(fs::path(images) / "img0.png", fs::path(images) / "I01_01_01.png");
    fs::copy_file(fs::path(images) / "img1.png", fs::path(images) / "I01_25_05.png");
    fs::copy_file(fs::path(images) / "img2.png", fs::path(images) / "I02_10_03.png");
    const std::string p = (fs::path(dir) / "dmos.csv").string();
    write_file(p,
               "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.16\nI01_25_05.png,I01.png,1.2,0.25\n"
               "I02_10_03.png,I02.png,3.0,0\n");
    const Dataset d = read_kadid10k(p, images);
    REQUIRE(d.size() == 3);
    CHECK(d.samples[0].type == "gaussian_blur");
    CHECK(d.samples[1].type == "contrast_change");
    CHECK(d.samples[2].type == "jpeg");
    CHECK(d.samples[1].std == Approx(0.5));
    CHECK(d.samples[0].group == "I01.png");
    CHECK(d.samples[2].mos == 3.0);
    write_file(p, "dist_img,ref_img,dmos,var\nbadname.png,I01.png,4.5,0.1\n");
    fs::copy_file(fs::path(images) / "img0.png", fs::path(images) / "badname.png");
    CHECK_THROWS_WITH(read_kadid10k(p, images), Contains("dmos.csv:2") && Contains("Ixx_TT_LL"));
  }
  SECTION("LIVE Challenge and SPAQ exports") {
    const std::string live = (fs::path(dir) / "livec.csv").string();
    write_file(live, "image,mos,std\nimg0.png,63.9,18.2\nimg3.png,25.5,\n");
    const Dataset l = read_live_challenge(live, images);
    REQUIRE(l.size() == 2);
    CHECK(l.name == "live_challenge");
    CHECK(l.samples[0].std == 18.2);
    CHECK(std::isnan(l.samples[1].std));
    const std::string spaq = (fs::path(dir) / "spaq.csv").string();
    write_file(
        spaq,
        "Image name,MOS,Brightness,Colorfulness,Contrast,Noisiness,Sharpness\nimg2.png,42.0,1,2,3,4,5\n");
    const Dataset s = read_spaq(spaq, images);
    REQUIRE(s.size() == 1);
    CHECK(s.samples[0].mos == 42.0);
    CHECK(s.name == "spaq");
    write_file(spaq, "Image name,Quality\nimg2.png,42.0\n");
    CHECK_THROWS_WITH(read_spaq(spaq, images), Contains("spaq.csv:1") && Contains("no MOS column"));
  }
  SECTION("generic with and without header") {
    const std::string p = (fs::path(dir) / "generic.csv").string();
    write_file(p,
               "images/img0.png,1.5\nimages/img1.png,2.5,0.3\nimages/img2.png,3.5,,refA\nimages/"
               "img3.png,4.5,0.1,refA,blur\n");
    const Dataset d = read_generic_csv(p);
    REQUIRE(d.size() == 4);
    CHECK(d.samples[0].group == "images/img0.png");
    CHECK(std::isnan(d.samples[0].std));
    CHECK(d.samples[1].std == 0.3);
    CHECK(d.samples[2].group == "refA");
    CHECK(d.samples[3].type == "blur");
    write_file(p, "type,mos,path,group\nnoise,2,images/img1.png,r1\nblur,3,images/img2.png,r2\n");
    const Dataset h = read_generic_csv(p);
    REQUIRE(h.size() == 2);
    CHECK(h.samples[0].path == (fs::path(dir) / "images/img1.png").string());
    CHECK(h.samples[1].type == "blur");
    CHECK(h.samples[1].group == "r2");
  }
}

TEST_CASE("readers: bad rows are errors naming file and line, or skipped with a warning", "[examples]") {
  const std::string dir = temp_dir("readers_bad");
  write_images(dir, 2);
  const std::string p = (fs::path(dir) / "g.csv").string();
  write_file(p, "images/img0.png,1\nimages/img1.png,abc\n");
  CHECK_THROWS_WITH(read_generic_csv(p), Contains("g.csv:2") && Contains("not a number") && Contains("abc"));
  write_file(p, "images/img0.png,1\nimages/missing.png,2\n");
  CHECK_THROWS_WITH(read_generic_csv(p),
                    Contains("g.csv:2") && Contains("missing.png") && Contains("does not exist"));
  write_file(p, "images/img0.png,1\nimages/img1.png,nan\n");
  CHECK_THROWS_WITH(read_generic_csv(p), Contains("g.csv:2") && Contains("not finite"));
  write_file(p, "images/img0.png,1\nimages/img1.png,2,-1\n");
  CHECK_THROWS_WITH(read_generic_csv(p), Contains("g.csv:2") && Contains("std must be >= 0"));
  write_file(p, "images/img0.png,1\nimages/img1.png,2,0,g,t,extra\n");
  CHECK_THROWS_WITH(read_generic_csv(p), Contains("g.csv:2") && Contains("2 to 5 fields"));
  write_file(p, "path,mos\nimages/img0.png,1\nimages/img1.png\n");
  CHECK_THROWS_WITH(read_generic_csv(p), Contains("g.csv:3") && Contains("expected"));
  // Skip with a warning: the good rows remain, the count is kept.
  write_file(p, "images/img0.png,1\nimages/missing.png,2\nimages/img1.png,x\nimages/img1.png,3\n");
  const Dataset d = read_generic_csv(p, {}, ReadOptions().skip_bad_rows(true));
  CHECK(d.size() == 2);
  CHECK(d.skipped == 2);
  CHECK(d.samples[1].line == 4);
  write_file(p, "images/missing.png,2\n");
  CHECK_THROWS_WITH(read_generic_csv(p, {}, ReadOptions().skip_bad_rows(true)), Contains("no usable rows"));
  CHECK_THROWS_WITH(read_dataset("tid2013", p, ""), Contains("unknown dataset format"));
}

// ---------------------------------------------------------------------------------------------------------------
// Splits and pairs

namespace {
Dataset synthetic_dataset(int n, int groups, bool with_std = true) {
  Dataset d{"test", "mem.csv", {}, 0};
  for (int i = 0; i < n; ++i) {
    Sample s;
    s.path = "img" + std::to_string(i);
    s.mos = static_cast<double>((i * 37) % 11);  // ties on purpose
    s.std = with_std ? 0.5 + 0.1 * (i % 3) : NAN;
    s.group = "ref" + std::to_string(i % groups);
    s.line = i + 1;
    s.source = "mem.csv";
    d.samples.push_back(s);
  }
  return d;
}
}  // namespace

TEST_CASE("splits: by image and by group are seeded partitions", "[examples]") {
  const Dataset d = synthetic_dataset(50, 7);
  const Split a = split_by_image(d, 0.8, 3), b = split_by_image(d, 0.8, 3), c = split_by_image(d, 0.8, 4);
  CHECK(a.train == b.train);
  CHECK(a.train != c.train);
  CHECK(a.train.size() == 40);
  std::set<int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.test.begin(), a.test.end());
  CHECK(all.size() == 50);
  const Split g = split_by_group(d, 0.7, 1);
  std::set<std::string> train_groups, test_groups;
  for (int64_t i : g.train) train_groups.insert(d.samples[static_cast<size_t>(i)].group);
  for (int64_t i : g.test) test_groups.insert(d.samples[static_cast<size_t>(i)].group);
  CHECK(train_groups.size() == 5);  // round(0.7 * 7)
  CHECK(test_groups.size() == 2);
  for (const auto& t : test_groups) CHECK(train_groups.count(t) == 0);
  CHECK(g.train.size() + g.test.size() == 50);
  CHECK_THROWS_WITH(split_by_group(synthetic_dataset(5, 1), 0.5, 0), Contains("at least 2 groups"));
  CHECK_THROWS_WITH(split_by_image(d, 1.0, 0), Contains("train_fraction"));
}

TEST_CASE("pairs: each image first once per epoch, distinct partners, correct labels, seeded", "[examples]") {
  const Dataset d = synthetic_dataset(30, 5);
  std::vector<int64_t> idx;
  for (int64_t i = 3; i < 30; i += 2) idx.push_back(i);
  const PairSampler bin(d, idx, PairLabel::Binary, 11), thu(d, idx, PairLabel::Thurstone, 11);
  const std::set<int64_t> allowed(idx.begin(), idx.end());
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto pairs = bin.epoch(epoch);
    REQUIRE(static_cast<int64_t>(pairs.size()) == bin.size());
    std::multiset<int64_t> firsts;
    for (const auto& p : pairs) {
      firsts.insert(p.a);
      CHECK(p.a != p.b);
      CHECK(allowed.count(p.b) == 1);
      const double ma = d.samples[static_cast<size_t>(p.a)].mos, mb = d.samples[static_cast<size_t>(p.b)].mos;
      CHECK(p.label == (ma > mb ? 1.0 : (ma < mb ? 0.0 : 0.5)));
    }
    CHECK(firsts == std::multiset<int64_t>(idx.begin(), idx.end()));
    // Thurstone labels: same pairs (same seed), g = Φ(Δ / sqrt(s1² + s2²)) computed here with erfc.
    const auto tp = thu.epoch(epoch);
    for (size_t k = 0; k < tp.size(); ++k) {
      CHECK(tp[k].a == pairs[k].a);
      CHECK(tp[k].b == pairs[k].b);
      const auto& sa = d.samples[static_cast<size_t>(tp[k].a)];
      const auto& sb = d.samples[static_cast<size_t>(tp[k].b)];
      const double z = (sa.mos - sb.mos) / std::sqrt(sa.std * sa.std + sb.std * sb.std);
      CHECK(tp[k].label == Approx(0.5 * std::erfc(-z / std::sqrt(2.0))).margin(1e-9));
    }
  }
  CHECK(bin.epoch(1).front().a == PairSampler(d, idx, PairLabel::Binary, 11).epoch(1).front().a);
  bool differs = false;
  const auto e0 = bin.epoch(0), e1 = bin.epoch(1);
  for (size_t k = 0; k < e0.size(); ++k) differs = differs || e0[k].a != e1[k].a;
  CHECK(differs);
  CHECK_THROWS_WITH(PairSampler(synthetic_dataset(4, 2, false), {0, 1, 2}, PairLabel::Thurstone, 0),
                    Contains("mem.csv:1") && Contains("std"));
  CHECK_THROWS_WITH(PairSampler(d, {4}, PairLabel::Binary, 0), Contains("at least 2"));
  CHECK_THROWS_WITH(PairSampler(d, {4, 4}, PairLabel::Binary, 0), Contains("distinct"));
}

// ---------------------------------------------------------------------------------------------------------------
// Backbones

TEST_CASE("backbones: ResNet-18/50 have torchvision's parameter names and counts", "[examples]") {
  auto count = [](torch::nn::Module& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    return n;
  };
  ResNet r18(ResNetOptions("resnet18"));
  // torchvision: resnet18 has 11,689,512 parameters including fc (512·1000 + 1000 = 513,000).
  CHECK(count(*r18) == 11689512 - 513000);
  CHECK(r18->feature_dim() == 512);
  std::set<std::string> names;
  for (const auto& p : r18->named_parameters()) names.insert(p.key());
  for (const auto& b : r18->named_buffers()) names.insert(b.key());
  for (const char* n : {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
                        "layer2.0.downsample.0.weight", "layer2.0.downsample.1.num_batches_tracked",
                        "layer4.1.conv2.weight", "layer4.1.bn2.running_var"}) {
    CHECK(names.count(n) == 1);
  }
  // 20 convolutions + 20 BatchNorms (weight, bias, 3 buffers each) = 20 + 100 tensors.
  CHECK(names.size() == 120);
  ResNet r50(ResNetOptions("resnet50"));
  // torchvision: resnet50 has 25,557,032 parameters including fc (2048·1000 + 1000 = 2,049,000).
  CHECK(count(*r50) == 25557032 - 2049000);
  CHECK(r50->feature_dim() == 2048);
  CHECK(r50->forward(torch::rand({2, 3, 64, 64})).sizes() == torch::IntArrayRef({2, 2048}));
  CHECK_THROWS_WITH(ResNet(ResNetOptions("vgg16")), Contains("unknown architecture"));
}

TEST_CASE("backbones: CNNIQA's local normalisation, pooling, shapes and errors", "[examples]") {
  torch::manual_seed(3);
  CNNIQA net(CNNIQAOptions().kernels(6).hidden(10));
  CHECK(net->feature_dim() == 10);
  const torch::Tensor x = torch::randn({2, 3, 9, 11}, torch::kDouble);
  net->to(torch::kDouble);
  CHECK(net->forward(x).sizes() == torch::IntArrayRef({2, 10}));
  // The local normalisation against a direct computation: at each pixel, the mean and the (population)
  // standard deviation of the grey values in the 7x7 window clipped to the image.
  const torch::Tensor z = net->normalize_local(x);
  REQUIRE(z.sizes() == torch::IntArrayRef({2, 2, 9, 11}));
  const torch::Tensor grey = x.mean(1);
  double worst = 0.0;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 9; ++i) {
      for (int64_t j = 0; j < 11; ++j) {
        double sum = 0.0, sum2 = 0.0;
        int n = 0;
        for (int64_t u = std::max<int64_t>(0, i - 3); u <= std::min<int64_t>(8, i + 3); ++u) {
          for (int64_t v = std::max<int64_t>(0, j - 3); v <= std::min<int64_t>(10, j + 3); ++v) {
            const double g = grey[b][u][v].item<double>();
            sum += g;
            sum2 += g * g;
            ++n;
          }
        }
        const double mean = sum / n, sd = std::sqrt(std::max(0.0, sum2 / n - mean * mean));
        const double lcn = (grey[b][i][j].item<double>() - mean) / (sd + 0.05);
        worst = std::max({worst, std::abs(z[b][0][i][j].item<double>() - lcn),
                          std::abs(z[b][1][i][j].item<double>() - sd)});
      }
    }
  }
  CHECK(worst < 1e-9);
  // Contrast stays visible: halving the contrast halves the standard-deviation channel.
  const torch::Tensor half = net->normalize_local(x * 0.5);
  CHECK(ohem_test::close(half.select(1, 1), z.select(1, 1) * 0.5, 0.0, 1e-12));
  // The pooled features are each kernel's maximum and minimum response.
  const torch::Tensor y = net->conv(z).flatten(2);
  const torch::Tensor expected =
      torch::relu(net->fc2(torch::relu(net->fc1(torch::cat({y.amax(2), y.amin(2)}, 1)))));
  CHECK(ohem_test::close(net->forward(x), expected, 0.0, 1e-12));
  CHECK_THROWS_WITH(net->forward(torch::rand({2, 1, 9, 9}, torch::kDouble)),
                    Contains("expected input [B, 3, H, W]"));
  CHECK_THROWS_WITH(net->forward(torch::rand({2, 3, 6, 9}, torch::kDouble)),
                    Contains("smaller than the 7x7 kernel"));
  CHECK_THROWS_WITH(CNNIQA(CNNIQAOptions().window(4)), Contains("window must be a positive odd number"));
  CHECK_THROWS_WITH(CNNIQA(CNNIQAOptions().kernels(0)), Contains("must be positive"));
}

TEST_CASE("backbones: register_backbone builds every --arch choice and refuses others", "[examples]") {
  for (const auto& arch : backbone_names()) {
    torch::nn::Module owner;
    ResNet resnet{nullptr};
    CNNIQA cnniqa{nullptr};
    const int64_t features = register_backbone(owner, arch, 8, resnet, cnniqa);
    CHECK(owner.named_children().contains("backbone"));
    CHECK(static_cast<bool>(resnet) == (arch != "cnniqa"));
    CHECK(static_cast<bool>(cnniqa) == (arch == "cnniqa"));
    // ResNet-18: 8 × 8 features; ResNet-50: 8 × 8 × 4 (bottleneck expansion); CNNIQA: its FC width, 800.
    CHECK(features == (arch == "resnet18" ? 64 : arch == "resnet50" ? 256 : 800));
  }
  torch::nn::Module owner;
  ResNet resnet{nullptr};
  CNNIQA cnniqa{nullptr};
  CHECK_THROWS_WITH(register_backbone(owner, "vgg16", 8, resnet, cnniqa),
                    Contains("unknown arch \"vgg16\" (expected one of resnet18, resnet50, cnniqa)"));
}

TEST_CASE("backbones: weights load from a TorchScript file by name", "[examples]") {
  torch::manual_seed(1);
  ResNet src(ResNetOptions("resnet18").width(8));
  src->forward(torch::rand({2, 3, 32, 32}));  // non-trivial running statistics
  torch::jit::Module script = to_script(*src, "ResNet");
  script.register_module("fc", to_script(*torch::nn::Linear(64, 10), "Linear"));  // torchvision's classifier
  const std::string path = ohem_test::temp_path("resnet.pt");
  script.save(path);
  torch::manual_seed(2);
  ResNet dst(ResNetOptions("resnet18").width(8));
  CHECK(load_script_weights(*dst, path) == 120);
  for (const auto& p : src->named_parameters())
    CHECK(torch::equal(p.value(), dst->named_parameters()[p.key()]));
  for (const auto& b : src->named_buffers()) CHECK(torch::equal(b.value(), dst->named_buffers()[b.key()]));
  ResNet wide(ResNetOptions("resnet18").width(16));
  CHECK_THROWS_WITH(load_script_weights(*wide, path), Contains("conv1.weight") && Contains("shape"));
  CHECK_THROWS_WITH(load_script_weights(*dst, path, ""), Contains("\"fc.") && Contains("lacks"));
  CHECK_THROWS_WITH(load_script_weights(*dst, path + ".missing"), Contains("cannot load TorchScript"));
}

// ---------------------------------------------------------------------------------------------------------------
// Logging helpers

TEST_CASE("io: the JSON-lines log writes null for non-finite numbers and valid UTF-8", "[examples]") {
  const std::string log = ohem_test::temp_path("log.jsonl");
  {
    JsonLog l(log, /*append=*/false);
    l.write(nlohmann::ordered_json{{"a", 1}, {"b", "x\"y\n"}, {"c", std::nan("")}, {"d", true}});
    l.write(nlohmann::ordered_json{{"name", std::string("bad \xff byte")}});
    CHECK(l.bytes() == static_cast<int64_t>(fs::file_size(log)));
  }
  std::ifstream lin(log);
  std::string line;
  std::getline(lin, line);
  CHECK(line == "{\"a\":1,\"b\":\"x\\\"y\\n\",\"c\":null,\"d\":true}");
  std::getline(lin, line);
  CHECK(line == "{\"name\":\"bad \xEF\xBF\xBD byte\"}");  // U+FFFD replaces the invalid byte
}
