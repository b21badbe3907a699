#pragma once
/// @file
/// `ohem::ScoresRef`: the score-vector parameter type of the metrics and gMAD functions (a view of a
/// `std::vector<double>`, an Eigen vector or a 1-D tensor).

#include <ohem/detail/scores.hpp>
#include <ohem/version.hpp>

#include <torch/torch.h>
#include <Eigen/Dense>

#include <cmath>
#include <cstdint>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// A read-only view of a score vector, implicitly made from a `std::vector<double>`, an Eigen vector
/// expression or a 1-D tensor of a real dtype (copied to double on the CPU).
///
/// It is meant as a parameter type: it may point into its argument, so do not keep it beyond the call.
/// Throws if a tensor is undefined, not 1-D, or not of a real dtype.
/// Example: `double r = ohem::srcc(torch::rand({8}), std::vector<double>(8, 1.0));`
class ScoresRef {
 public:
  /// Views a vector of doubles.
  ScoresRef(const std::vector<double>& v)
      : data_(v.data()), size_(static_cast<int64_t>(v.size())) {}  // NOLINT
  /// Views an Eigen::VectorXd (no copy).
  ScoresRef(const Eigen::VectorXd& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
  /// Copies any other Eigen vector expression (a Map, a block, a row vector, another scalar type).
  template <class Derived>
  ScoresRef(const Eigen::DenseBase<Derived>& v) {  // NOLINT(google-explicit-constructor)
    TORCH_CHECK(v.rows() == 1 || v.cols() == 1, "ohem::ScoresRef: expected an Eigen vector, got a ", v.rows(),
                "x", v.cols(), " matrix");
    owned_ = v.derived().template cast<double>();
    data_ = owned_.data();
    size_ = owned_.size();
  }
  /// Views a 1-D tensor of a real dtype (after copying it to double on the CPU).
  ScoresRef(const torch::Tensor& t) {  // NOLINT(google-explicit-constructor)
    TORCH_CHECK(t.defined(), "ohem::ScoresRef: the scores tensor is undefined");
    TORCH_CHECK(t.dim() == 1, "ohem::ScoresRef: expected a 1-D tensor of scores, got shape ", t.sizes());
    TORCH_CHECK(!t.is_complex() && t.scalar_type() != torch::kBool,
                "ohem::ScoresRef: expected a real dtype, got ", t.scalar_type());
    tensor_ = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
    data_ = tensor_.data_ptr<double>();
    size_ = tensor_.numel();
  }
  ScoresRef(const ScoresRef&) = delete;
  ScoresRef& operator=(const ScoresRef&) = delete;

  /// Returns the number of scores.
  int64_t size() const { return size_; }
  /// Returns the scores' contiguous storage.
  const double* data() const { return data_; }
  /// Returns the i-th score.
  double operator[](int64_t i) const { return data_[i]; }
  /// Returns the scores as an Eigen map (no copy).
  Eigen::Map<const Eigen::VectorXd> vec() const { return {data_, size_}; }

 private:
  const double* data_ = nullptr;
  int64_t size_ = 0;
  Eigen::VectorXd owned_;
  torch::Tensor tensor_;
};

OHEM_END_NAMESPACE
