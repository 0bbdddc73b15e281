# cmake -DMODE=<find_package|subdirectory|fetchcontent> -DSOURCE=<dskit src> -DWORK=<dir> [-DPREFIX=<install>]
#       -DCXX=<compiler> -P run_consumer.cmake
# Configures, builds and runs tests/package/consumer the way a user's project would.
file(REMOVE_RECURSE ${WORK})
set(args -S ${SOURCE}/tests/package/consumer -B ${WORK} -DDSKIT_CONSUME=${MODE} -DDSKIT_SOURCE_DIR=${SOURCE}
         -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX})
if(PREFIX)
  list(APPEND args -DCMAKE_PREFIX_PATH=${PREFIX})
endif()
foreach(step IN ITEMS configure build run)
  if(step STREQUAL "configure")
    execute_process(COMMAND ${CMAKE_COMMAND} ${args} RESULT_VARIABLE rc)
  elseif(step STREQUAL "build")
    execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK} RESULT_VARIABLE rc)
  else()
    execute_process(COMMAND ${WORK}/consumer RESULT_VARIABLE rc)
  endif()
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}): ${step} failed (${rc})")
  endif()
endforeach()
message(STATUS "consumer (${MODE}): configured, built and ran")
