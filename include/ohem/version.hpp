#pragma once
/// @file
/// Version of the ohem library; CMake reads the project version from these three lines.

#define OHEM_VERSION_MAJOR 0
#define OHEM_VERSION_MINOR 1
#define OHEM_VERSION_PATCH 0

/// Encodes the version as one integer, e.g. 0.1.0 -> 100, for preprocessor comparisons.
#define OHEM_VERSION (OHEM_VERSION_MAJOR * 10000 + OHEM_VERSION_MINOR * 100 + OHEM_VERSION_PATCH)

/// Opens ohem's namespace with its inline ABI namespace (`ohem::v0`): a release that changes the ABI
/// bumps `v0`, so objects built against two versions never link silently. Every header uses this pair.
#define OHEM_BEGIN_NAMESPACE \
  namespace ohem {           \
  inline namespace v0 {
/// Closes what `OHEM_BEGIN_NAMESPACE` opened.
#define OHEM_END_NAMESPACE \
  }                        \
  }

OHEM_BEGIN_NAMESPACE
/// Returns the library version as "MAJOR.MINOR.PATCH".
inline const char* version_string() noexcept {
#define OHEM_DETAIL_STR2(x) #x
#define OHEM_DETAIL_STR(x) OHEM_DETAIL_STR2(x)
  return OHEM_DETAIL_STR(OHEM_VERSION_MAJOR) "." OHEM_DETAIL_STR(OHEM_VERSION_MINOR) "." OHEM_DETAIL_STR(
      OHEM_VERSION_PATCH);
#undef OHEM_DETAIL_STR
#undef OHEM_DETAIL_STR2
}
OHEM_END_NAMESPACE
