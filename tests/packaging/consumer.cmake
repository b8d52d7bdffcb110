# Included by each packaging project: the consumer program (main.cpp) as a
# user builds it.
set(_sockact_consumer_main "${CMAKE_CURRENT_LIST_DIR}/main.cpp")

# sockact_add_consumer(NAME LIBRARY VERSION [DEFINITIONS...]): main.cpp linked
# with LIBRARY, checking that it finds sockact VERSION.
function(sockact_add_consumer name library version)
  add_executable(${name} "${_sockact_consumer_main}")
  target_link_libraries(${name} PRIVATE ${library})
  # Deliberately below C++17: sockact's usage requirements must raise it.
  set_target_properties(${name} PROPERTIES CXX_STANDARD 11)
  target_compile_definitions(${name} PRIVATE "EXPECTED_VERSION=\"${version}\"" ${ARGN})
endfunction()
