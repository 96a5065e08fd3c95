# hs_library(<name> DEPS <libs...>): one library per folder. Sources are every .cpp in
# src/<name>/, public headers live in include/headsplit/<name>/.
function(hs_library name)
  cmake_parse_arguments(ARG "" "" "DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  if(_srcs)
    add_library(hs_${name} STATIC ${_srcs})
    target_include_directories(hs_${name} PUBLIC ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(hs_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  else()
    # Header-only (or not yet written): an interface library keeps the layering declared.
    add_library(hs_${name} INTERFACE)
    target_include_directories(hs_${name} INTERFACE ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(hs_${name} INTERFACE ${ARG_DEPS})
  endif()
  add_library(headsplit::${name} ALIAS hs_${name})
endfunction()

# hs_test(<name> DEPS <libs...>): one test binary per library, from every .cpp in tests/<name>/.
function(hs_test name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${name}/*.cpp)
  if(NOT _srcs)
    return()
  endif()
  add_executable(test_${name} ${_srcs})
  target_link_libraries(test_${name} PRIVATE ${ARG_DEPS} hs_testing GTest::gtest GTest::gmock
                        GTest::gtest_main)
  # Under HS_SANITIZE the libraries are instrumented and the tests run against them; the test
  # code itself is not, and is compiled at -Og in both builds (tests/CMakeLists.txt). GCC 12
  # reports false array-bounds/stringop warnings in std::string code at -O1 and -Og here.
  target_compile_options(test_${name} PRIVATE -Wno-array-bounds -Wno-stringop-overflow
                         -Wno-stringop-overread)
  gtest_discover_tests(test_${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 120
    PROPERTIES ENVIRONMENT "HEADSPLIT_SHARED_DIR=${HEADSPLIT_SHARED_DIR}")
endfunction()
