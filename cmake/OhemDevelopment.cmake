# Settings for ohem's own tests, examples and benchmarks (never applied to consumers of ohem::ohem).

# ohem_pch: one precompiled header with LibTorch, Eigen and fmt that every target of ours reuses.
# LibTorch headers dominate build time (~30 s per translation unit without it).
add_library(ohem_pch STATIC "${CMAKE_CURRENT_LIST_DIR}/pch.cpp")
target_link_libraries(ohem_pch PUBLIC ohem::ohem)
set(OHEM_WARNINGS -Wall -Wextra -Wno-unused-parameter)
target_compile_options(ohem_pch PRIVATE ${OHEM_WARNINGS})
if(OHEM_PCH)
  target_precompile_headers(ohem_pch PUBLIC
    <torch/torch.h> <torch/script.h> <Eigen/Dense> <fmt/format.h> <vector> <string> <memory>)
endif()

# ohem_target_defaults(<target>): warnings, the shared PCH, and the threads library.
function(ohem_target_defaults target)
  target_compile_options(${target} PRIVATE ${OHEM_WARNINGS})
  target_link_libraries(${target} PRIVATE ohem::ohem)
  if(OHEM_PCH)
    target_precompile_headers(${target} REUSE_FROM ohem_pch)
  endif()
endfunction()
