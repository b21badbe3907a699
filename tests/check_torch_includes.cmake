# Every public header that names LibTorch (torch::, at::, c10::) includes a LibTorch header itself.
# The per-header compile check (ohem_header_check in tests/CMakeLists.txt) precompiles <torch/torch.h>,
# so it cannot see a header that forgets that include; this test does.
# Usage: cmake -DOHEM_INCLUDE_DIR=<repo>/include -P tests/check_torch_includes.cmake
if(NOT IS_DIRECTORY "${OHEM_INCLUDE_DIR}/ohem")
  message(FATAL_ERROR "check_torch_includes: no ohem headers under OHEM_INCLUDE_DIR='${OHEM_INCLUDE_DIR}'")
endif()
file(GLOB_RECURSE _headers "${OHEM_INCLUDE_DIR}/ohem/*.hpp")
set(_missing "")
set(_checked 0)
foreach(_h IN LISTS _headers)
  file(READ "${_h}" _text)
  if(_text MATCHES "(torch|at|c10)::")
    math(EXPR _checked "${_checked} + 1")
    if(NOT _text MATCHES "#include <(torch|ATen|c10)/")
      file(RELATIVE_PATH _rel "${OHEM_INCLUDE_DIR}" "${_h}")
      list(APPEND _missing "${_rel}")
    endif()
  endif()
endforeach()
if(_checked EQUAL 0)
  message(FATAL_ERROR "check_torch_includes: no header names LibTorch; is OHEM_INCLUDE_DIR right?")
endif()
if(_missing)
  list(JOIN _missing "\n  " _list)
  message(FATAL_ERROR "check_torch_includes: these headers use LibTorch without including a LibTorch "
                      "header (add #include <torch/torch.h>):\n  ${_list}")
endif()
message(STATUS "check_torch_includes: ${_checked} headers use LibTorch, each includes it")
