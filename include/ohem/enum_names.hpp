#pragma once
/// @file
/// The names of ohem's enums, listed once per enum beside its declaration: for each value the name
/// `to_string` returns (as spelled in C++, e.g. "GlobalMagnitude") and a lower-case key for command lines
/// and files (e.g. "magnitude": what the example tools accept and write to results.json).
///
/// Example: `ohem::enum_key(ohem::MaskCriterion::LayerMagnitude)` is "layer-magnitude";
/// `ohem::enum_from_key<ohem::BatchNormPolicy>("frozen")` is `BatchNormPolicy::Frozen`.

#include <ohem/version.hpp>

#include <optional>
#include <string_view>

OHEM_BEGIN_NAMESPACE

/// One value of an enum with its two names.
template <typename E>
struct EnumName {
  E value;
  /// The value's name as spelled in C++ (what `to_string` returns).
  const char* name;
  /// The lower-case key command lines and files use.
  const char* key;
};

/// The names of every value of enum `E`, in declaration order: specialised beside each enum as
/// `template <> struct EnumNames<E> { static constexpr EnumName<E> values[] = {...}; };`.
template <typename E>
struct EnumNames;

/// Returns the C++ name of `value`, or "?" for a value outside the enum (e.g. a cast integer).
template <typename E>
constexpr const char* enum_name(E value) noexcept {
  for (const EnumName<E>& n : EnumNames<E>::values)
    if (n.value == value) return n.name;
  return "?";
}

/// Returns the lower-case key of `value`, or "?" for a value outside the enum.
template <typename E>
constexpr const char* enum_key(E value) noexcept {
  for (const EnumName<E>& n : EnumNames<E>::values)
    if (n.value == value) return n.key;
  return "?";
}

/// Returns the value whose key is `key`, or nothing if no value has it.
template <typename E>
constexpr std::optional<E> enum_from_key(std::string_view key) noexcept {
  for (const EnumName<E>& n : EnumNames<E>::values)
    if (key == n.key) return n.value;
  return std::nullopt;
}

OHEM_END_NAMESPACE
