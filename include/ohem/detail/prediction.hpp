#pragma once
/// @file
/// Internal: the prediction types `OhemLoss` accepts (a tensor, a pair or a tuple of tensors) and how to
/// walk their members.

#include <ohem/version.hpp>

#include <torch/torch.h>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

inline void check_count(const std::vector<torch::Tensor>& members, std::size_t expected) {
  TORCH_CHECK(members.size() == expected, "ohem: a prediction of ", expected, " members was assembled from ",
              members.size(), " tensors");
}

template <typename P>
struct prediction_traits : std::false_type {};
template <>
struct prediction_traits<torch::Tensor> : std::true_type {
  static constexpr std::size_t size = 1;
  template <typename Fn>
  static void for_each(const torch::Tensor& p, Fn&& fn) {
    fn(std::size_t{0}, p);
  }
  template <typename Fn>
  static void for_each2(const torch::Tensor& a, const torch::Tensor& b, Fn&& fn) {
    fn(std::size_t{0}, a, b);
  }
  template <typename Fn>
  static torch::Tensor map(const torch::Tensor& p, Fn&& fn) {
    return fn(p);
  }
  static torch::Tensor from_members(const std::vector<torch::Tensor>& m) {
    check_count(m, size);
    return m[0];
  }
};
template <>
struct prediction_traits<std::pair<torch::Tensor, torch::Tensor>> : std::true_type {
  using P = std::pair<torch::Tensor, torch::Tensor>;
  static constexpr std::size_t size = 2;
  template <typename Fn>
  static void for_each(const P& p, Fn&& fn) {
    fn(std::size_t{0}, p.first);
    fn(std::size_t{1}, p.second);
  }
  template <typename Fn>
  static void for_each2(const P& a, const P& b, Fn&& fn) {
    fn(std::size_t{0}, a.first, b.first);
    fn(std::size_t{1}, a.second, b.second);
  }
  template <typename Fn>
  static P map(const P& p, Fn&& fn) {
    return P(fn(p.first), fn(p.second));
  }
  static P from_members(const std::vector<torch::Tensor>& m) {
    check_count(m, size);
    return P(m[0], m[1]);
  }
};
template <typename... Ts>
struct prediction_traits<std::tuple<Ts...>>
    : std::bool_constant<sizeof...(Ts) >= 1 && (std::is_same_v<Ts, torch::Tensor> && ...)> {
  using P = std::tuple<Ts...>;
  static constexpr std::size_t size = sizeof...(Ts);
  template <typename Fn>
  static void for_each(const P& p, Fn&& fn) {
    each(p, fn, std::index_sequence_for<Ts...>{});
  }
  template <typename Fn>
  static void for_each2(const P& a, const P& b, Fn&& fn) {
    each2(a, b, fn, std::index_sequence_for<Ts...>{});
  }
  template <typename Fn>
  static P map(const P& p, Fn&& fn) {
    return map_impl(p, fn, std::index_sequence_for<Ts...>{});
  }
  static P from_members(const std::vector<torch::Tensor>& m) {
    check_count(m, size);
    return from_impl(m, std::index_sequence_for<Ts...>{});
  }

 private:
  template <typename Fn, std::size_t... I>
  static void each(const P& p, Fn& fn, std::index_sequence<I...>) {
    (fn(I, std::get<I>(p)), ...);
  }
  template <typename Fn, std::size_t... I>
  static void each2(const P& a, const P& b, Fn& fn, std::index_sequence<I...>) {
    (fn(I, std::get<I>(a), std::get<I>(b)), ...);
  }
  template <typename Fn, std::size_t... I>
  static P map_impl(const P& p, Fn& fn, std::index_sequence<I...>) {
    return P(fn(std::get<I>(p))...);
  }
  template <std::size_t... I>
  static P from_impl(const std::vector<torch::Tensor>& m, std::index_sequence<I...>) {
    return P(m[I]...);
  }
};

/// True for the prediction types OhemLoss accepts: a tensor, a pair of tensors, a tuple of tensors.
template <typename P>
inline constexpr bool is_prediction_v = prediction_traits<std::decay_t<P>>::value;

/// Returns the prediction with every member detached.
template <typename P>
P detach_prediction(const P& p) {
  return prediction_traits<P>::map(p, [](const torch::Tensor& t) { return t.detach(); });
}

/// Returns the members of a prediction, detached, in order.
template <typename P>
std::vector<torch::Tensor> detached_members(const P& p) {
  std::vector<torch::Tensor> out;
  prediction_traits<P>::for_each(p, [&](std::size_t, const torch::Tensor& t) { out.push_back(t.detach()); });
  return out;
}

}  // namespace detail
OHEM_END_NAMESPACE
