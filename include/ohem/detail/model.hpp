#pragma once
/// @file
/// Internal: the kinds of model ohem wraps (a torch::nn module held by value, a module holder, a
/// `std::shared_ptr` to a module, a TorchScript module), how a wrapper stores each, and running one on an
/// input of tensors.

#include <ohem/version.hpp>

#include <torch/jit.h>
#include <torch/torch.h>

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// std::remove_cvref_t (C++20).
template <typename T>
using remove_cvref_t = std::remove_cv_t<std::remove_reference_t<T>>;

template <typename T, typename = void>
struct is_module_holder : std::false_type {};
template <typename T>
struct is_module_holder<T, std::void_t<typename T::ContainedType>>
    : std::is_base_of<torch::nn::ModuleHolder<typename T::ContainedType>, T> {};

template <typename T>
struct is_module_ptr : std::false_type {};
template <typename T>
struct is_module_ptr<std::shared_ptr<T>> : std::is_base_of<torch::nn::Module, T> {};

template <typename T>
struct is_script_module : std::is_same<T, torch::jit::Module> {};

/// True for a user's module type held by value (`struct Net : torch::nn::Module {...}; Net net;`, as
/// LibTorch's own examples write it): ohem refers to such a module, it never copies or owns it.
template <typename T>
inline constexpr bool is_module_value_v = std::is_base_of_v<torch::nn::Module, T>;

/// True for the model types ohem wraps.
template <typename T>
inline constexpr bool is_model_v = is_module_holder<T>::value || is_module_ptr<T>::value ||
                                   is_script_module<T>::value || is_module_value_v<T>;

/// How a wrapper of `Model` takes and keeps it. A holder, a `std::shared_ptr` and a TorchScript module are
/// handles: taken by value, kept as they are (copies share the module). A module held by value is taken
/// by reference and kept as a non-owning `std::shared_ptr` (an empty deleter): the wrapper refers to the
/// user's object, which must outlive it. While that pointer lives, the module's `shared_from_this()` works,
/// so LibTorch's module walks reach the root too.
template <typename Model, bool = is_module_value_v<Model>>
struct ModelStorage {
  using Arg = Model;
  using Stored = Model;
  static Stored store(Model model) { return model; }
  static Model& get(Stored& stored) { return stored; }
};
template <typename Model>
struct ModelStorage<Model, true> {
  using Arg = Model&;
  using Stored = std::shared_ptr<Model>;
  static Stored store(Model& model) {
    return Stored(&model, [](Model*) {});
  }
  static Model& get(Stored& stored) { return *stored; }
};

/// Returns the model's parameters (`buffers` false) or buffers (true), recursively.
template <typename Model>
std::vector<torch::Tensor> module_tensors(Model& model, bool buffers) {
  std::vector<torch::Tensor> out;
  if constexpr (is_script_module<Model>::value) {
    if (buffers) {
      for (const auto& b : model.buffers(true)) out.push_back(b);
    } else {
      for (const auto& p : model.parameters(true)) out.push_back(p);
    }
  } else if constexpr (is_module_value_v<Model>) {
    out = buffers ? model.buffers(true) : model.parameters(true);
  } else {
    out = buffers ? model->buffers(true) : model->parameters(true);
  }
  return out;
}

/// Returns the devices whose default generators the model's forward may draw from: the CPU, and every
/// CUDA device holding one of its parameters.
template <typename Model>
std::vector<torch::Device> generator_devices(Model& model) {
  std::vector<torch::Device> devices{torch::Device(torch::kCPU)};
  for (const auto& t : module_tensors(model, false)) {
    const torch::Device d = t.device();
    if (!d.is_cuda()) continue;
    bool seen = false;
    for (const auto& e : devices) seen = seen || e == d;
    if (!seen) devices.push_back(d);
  }
  return devices;
}

/// Runs the model's forward on one tensor.
template <typename Model, typename X>
auto forward_one(Model& model, const X& x) {
  if constexpr (is_script_module<Model>::value) {
    return model.forward(std::vector<torch::jit::IValue>{torch::jit::IValue(x)}).toTensor();
  } else {
    return model->forward(x);
  }
}

template <typename T>
struct is_tensor_pair : std::false_type {};
template <>
struct is_tensor_pair<std::pair<torch::Tensor, torch::Tensor>> : std::true_type {};
template <typename T>
struct is_tensor_tuple : std::false_type {};
template <typename... Ts>
struct is_tensor_tuple<std::tuple<Ts...>> : std::bool_constant<(std::is_same_v<Ts, torch::Tensor> && ...)> {};

/// True for the inputs `SelfCompetitor` runs through a model itself: a tensor, a pair or tuple of tensors.
template <typename T>
inline constexpr bool is_model_input_v =
    std::is_same_v<T, torch::Tensor> || is_tensor_pair<T>::value || is_tensor_tuple<T>::value;

/// Runs the model on an input: a tensor, or each member of a pair/tuple of tensors in order.
template <typename Model, typename Input>
auto forward_input(Model& model, const Input& input) {
  if constexpr (std::is_same_v<Input, torch::Tensor>) {
    return forward_one(model, input);
  } else if constexpr (is_tensor_pair<Input>::value) {
    torch::Tensor a = forward_one(model, input.first);
    torch::Tensor b = forward_one(model, input.second);
    return std::make_pair(std::move(a), std::move(b));
  } else {
    // A braced list evaluates its elements left to right: the members run in order.
    return std::apply(
        [&](const auto&... x) {
          return std::tuple<std::decay_t<decltype(forward_one(model, x))>...>{forward_one(model, x)...};
        },
        input);
  }
}

}  // namespace detail
OHEM_END_NAMESPACE
