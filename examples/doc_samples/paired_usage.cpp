// Compiled sample of docs/statistics.md: every block between DOC-BEGIN and DOC-END appears verbatim there.
#include <ohem/paired.hpp>

#include <cstdio>
#include <vector>

// DOC-BEGIN
// One value per seed for each arm (say the overall SRCC), the arms trained on the same data, crops and order.
void report(const std::vector<double>& ohem_arm, const std::vector<double>& baseline) {
  auto t = ohem::paired_t_test(ohem_arm, baseline);         // differences ohem_arm - baseline, 95 % interval
  auto flip = ohem::sign_flip_test(ohem_arm, baseline);     // exact: all 2^n sign patterns
  double mde = ohem::minimum_detectable_effect(t.n, t.sd);  // 80 % power, two-sided alpha 0.05
  std::printf(
      "delta = %.4f, 95 %% t-interval [%.4f, %.4f], t-test p = %.3f, sign-flip p = %.4f (%llu/%llu), "
      "n = %lld seeds\n",
      t.mean, t.lower, t.upper, t.p_value, flip.p_value,
      static_cast<unsigned long long>(flip.extreme_patterns), static_cast<unsigned long long>(flip.patterns),
      static_cast<long long>(t.n));
  std::printf("smallest effect detected with 80 %% power at this spread: %.4f\n", mde);
}

// Per-type rows: one p-value per distortion type, adjusted together (Holm).
void report_types(const std::vector<double>& per_type_p) {
  std::vector<double> adjusted = ohem::holm_adjust(per_type_p);
  for (size_t i = 0; i < adjusted.size(); ++i) {
    std::printf("type %zu: p = %.4f, Holm %.4f\n", i, per_type_p[i], adjusted[i]);
  }
}
// DOC-END

int main() {
  report({0.842, 0.851, 0.838, 0.860, 0.845, 0.849}, {0.839, 0.853, 0.830, 0.851, 0.846, 0.840});
  report_types({0.03125, 0.5, 0.0625, 0.21875, 1.0, 0.03125});
  return 0;
}
