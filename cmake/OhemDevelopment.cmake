# Settings for ohem's own tests, examples and benchmarks (never applied to consumers of ohem::ohem).

# Warnings for our own code. LibTorch, Eigen, fmt and Catch2 come through imported targets, so their
# headers are system headers and stay quiet. OHEM_WERROR (the clang preset) turns warnings into errors.
option(OHEM_WERROR "Treat warnings in ohem's own targets as errors" OFF)
set(OHEM_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # TORCH_CHECK(cond) and TORCH_INTERNAL_ASSERT(cond) without a message leave LibTorch's variadic macro
  # without arguments: standard in C++20, a GNU extension in C++17 that Clang flags at our call sites
  # (GCC does not: the macros are LibTorch's). LibTorch documents and uses that form itself.
  list(APPEND OHEM_WARNINGS -Wno-gnu-zero-variadic-macro-arguments)
endif()
if(OHEM_WERROR)
  list(APPEND OHEM_WARNINGS -Werror)
endif()

# ohem_pch: one precompiled header with LibTorch, Eigen and fmt that every target of ours reuses.
# LibTorch headers dominate build time (~30 s per translation unit without it).
add_library(ohem_pch STATIC "${CMAKE_CURRENT_LIST_DIR}/pch.cpp")
target_link_libraries(ohem_pch PUBLIC ohem::ohem)
target_compile_options(ohem_pch PRIVATE ${OHEM_WARNINGS})
if(OHEM_PCH)
  target_precompile_headers(ohem_pch PUBLIC
    <torch/torch.h> <torch/script.h> <Eigen/Dense> <fmt/format.h> <vector> <string> <memory>)
endif()

# ohem_target_defaults(<target> [NO_PCH]): warnings, the library, and the shared PCH unless NO_PCH
# (a target whose translation units must see only what they include, like the header check).
function(ohem_target_defaults target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_PCH" "" "")
  target_compile_options(${target} PRIVATE ${OHEM_WARNINGS})
  target_link_libraries(${target} PRIVATE ohem::ohem)
  if(OHEM_PCH AND NOT arg_NO_PCH)
    target_precompile_headers(${target} REUSE_FROM ohem_pch)
  endif()
endfunction()
