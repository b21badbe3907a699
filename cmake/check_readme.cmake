# Checks that README.md's first ```cpp block is the code between README-BEGIN and README-END in SOURCE,
# so the README's example is compiled and run by the build and cannot rot.
file(READ "${README}" readme)
file(READ "${SOURCE}" source)
string(FIND "${readme}" "```cpp\n" start)
if(start EQUAL -1)
  message(FATAL_ERROR "${README}: no ```cpp block")
endif()
math(EXPR start "${start} + 7")
string(SUBSTRING "${readme}" ${start} -1 rest)
string(FIND "${rest}" "```" stop)
string(SUBSTRING "${rest}" 0 ${stop} readme_code)
string(REGEX MATCH "// README-BEGIN\n(.*)// README-END" _ "${source}")
set(source_code "${CMAKE_MATCH_1}")
if(NOT readme_code STREQUAL source_code)
  message(FATAL_ERROR "The first ```cpp block of ${README} differs from the README-BEGIN/END part of ${SOURCE}; "
                      "update one to match the other.\n--- README:\n${readme_code}\n--- source:\n${source_code}")
endif()
message(STATUS "README example matches ${SOURCE}")
