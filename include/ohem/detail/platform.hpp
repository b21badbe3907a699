#pragma once
/// @file
/// Internal: the instrument of `ohem::probe_convolution_backward` (ohem/platform.hpp), c10's junk-fill
/// flag, found at run time with `dlsym` (so the process must link the dynamic loader's library:
/// `${CMAKE_DL_LIBS}`, which the `ohem::ohem` target carries).

#include <ohem/version.hpp>

#include <initializer_list>

#if __has_include(<dlfcn.h>)
#include <dlfcn.h>
#define OHEM_DETAIL_HAS_DLSYM 1
#else
#define OHEM_DETAIL_HAS_DLSYM 0
#endif

OHEM_BEGIN_NAMESPACE
namespace detail {

/// Returns c10's flag FLAGS_caffe2_cpu_allocator_do_junk_fill (while true, every new CPU allocation is
/// filled with NaN bit patterns): a plain global where LibTorch is built without gflags (Debian 13's
/// 2.6), in namespace fLB where it is built with gflags (Debian 12's 1.13). Null if neither symbol is
/// exported, or the platform has no `dlsym`.
inline bool* junk_fill_flag() {
#if OHEM_DETAIL_HAS_DLSYM
  for (const char* name :
       {"FLAGS_caffe2_cpu_allocator_do_junk_fill", "_ZN3fLB39FLAGS_caffe2_cpu_allocator_do_junk_fillE"}) {
    if (void* p = ::dlsym(RTLD_DEFAULT, name)) return static_cast<bool*>(p);
  }
#endif
  return nullptr;
}

}  // namespace detail
OHEM_END_NAMESPACE

#undef OHEM_DETAIL_HAS_DLSYM
