cmake_minimum_required(VERSION 3.18)
# Checks that adopting ohem changes at most MAX_CHANGED lines of the plain training loop (BEFORE → AFTER,
# lines added plus lines removed) and that MARKDOWN shows exactly that diff as a ```diff block.
# Usage: cmake -DBEFORE=before.cpp -DAFTER=after.cpp -DMARKDOWN=integration.md -DMAX_CHANGED=10 -P this
find_program(DIFF diff REQUIRED)
get_filename_component(before_name "${BEFORE}" NAME)
get_filename_component(after_name "${AFTER}" NAME)
execute_process(COMMAND "${DIFF}" -u --label "${before_name}" --label "${after_name}" "${BEFORE}" "${AFTER}"
                OUTPUT_VARIABLE patch RESULT_VARIABLE rc)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "diff ${BEFORE} ${AFTER} returned ${rc} (expected 1: the files differ)")
endif()
# Every line of the patch that starts with + or -, less the two file header lines (--- / +++).
string(REPLACE ";" "" doubled "\n${patch}")  # semicolons would split the CMake list
string(REPLACE "\n" "\n\n" doubled "${doubled}")
string(REGEX MATCHALL "\n[-+][^\n]*" changed "${doubled}")
list(LENGTH changed count)
math(EXPR count "${count} - 2")
if(count GREATER MAX_CHANGED)
  message(FATAL_ERROR "adopting ohem changes ${count} lines of ${BEFORE}, more than ${MAX_CHANGED}:\n${patch}")
endif()
file(READ "${MARKDOWN}" markdown)
string(FIND "${markdown}" "```diff\n${patch}```" found)
if(found EQUAL -1)
  message(FATAL_ERROR "${MARKDOWN} has no ```diff block equal to this diff (update the page):\n${patch}")
endif()
message(STATUS "${count} changed lines; ${MARKDOWN} shows the diff")
