# Runs ohem-eval with ARGS (a ;-list) and checks its exit status (EXPECT_RC) and that its stdout+stderr
# contains EXPECT (a plain substring, not a regex). Used by the CTest tests in CMakeLists.txt.
execute_process(COMMAND "${EXE}" ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL EXPECT_RC)
  message(FATAL_ERROR "ohem-eval ${ARGS}: exit status ${rc}, expected ${EXPECT_RC}\n${out}${err}")
endif()
string(FIND "${out}${err}" "${EXPECT}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "ohem-eval ${ARGS}: output lacks \"${EXPECT}\":\n${out}${err}")
endif()
message(STATUS "${out}${err}")
