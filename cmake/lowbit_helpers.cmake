# One test binary per *_test.cc file, named after it, registered with CTest
# test by test so that ctest's summary counts every case.
function(lowbit_add_test src)
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE lowbit GTest::gtest GTest::gtest_main rapidcheck)
  if(TARGET lowbit_cli)
    add_dependencies(${name} lowbit_cli)
  endif()
  target_compile_definitions(${name} PRIVATE
    LOWBIT_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared"
    LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    LOWBIT_CLI_PATH="$<TARGET_FILE:lowbit_cli>")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 900)
endfunction()
