#pragma once
/// @file
/// `TensorHandle`: a uniform way to read and replace the tensor a layer's forward uses (a prunable weight's
/// `Slot::handle`).

#include <ohem/version.hpp>

#include <torch/jit.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

OHEM_BEGIN_NAMESPACE

/// Reads and replaces one tensor that a layer's forward reads, e.g. `conv->weight` of a
/// `torch::nn::Conv2dImpl` or the attribute `weight` of a TorchScript submodule.
///
/// The registered parameter (or buffer) itself is never touched: only the handle the forward reads is
/// pointed elsewhere for a while, and pointed back afterwards.
struct TensorHandle {
  /// Returns the tensor the forward reads now.
  std::function<torch::Tensor()> get;
  /// Points the forward at another tensor.
  std::function<void(const torch::Tensor&)> set;

  /// Makes a handle to a member tensor of a module that `owner` keeps alive.
  template <typename Impl>
  static TensorHandle member(std::shared_ptr<Impl> owner, torch::Tensor Impl::*field) {
    TensorHandle h;
    h.get = [owner, field]() { return (*owner).*field; };
    h.set = [owner, field](const torch::Tensor& t) { (*owner).*field = t; };
    return h;
  }

  /// Makes a handle to an attribute of a TorchScript (sub)module.
  template <typename = void>
  static TensorHandle attribute(torch::jit::Module module, std::string name) {
    TensorHandle h;
    h.get = [module, name]() { return module.attr(name).toTensor(); };
    h.set = [module, name](const torch::Tensor& t) mutable { module.setattr(name, t); };
    return h;
  }
};

OHEM_END_NAMESPACE
