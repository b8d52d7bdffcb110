# Install rules of the `tools` component: sockact-run, libsockact-adopt.so and
# their man pages. Included by the top-level CMakeLists.txt once the tools'
# folders have made their targets.
#
# The tools are installed when they have been built. `cmake --install <build>`
# right after configure installs the `development` component (headers, package
# files, sockact(7)) and says which tools it skipped, so a header-only install
# needs no build; after a build it installs the tools as well.
# `cmake --install <build> --component tools` without a build fails instead,
# naming the targets to build.

# sockact-run --adopt looks for libsockact-adopt.so next to its executable,
# then in <its folder>/../lib: the default is that second place, whatever
# CMAKE_INSTALL_LIBDIR says (lib64, lib/<multiarch>). It is an LD_PRELOAD
# module, loaded by path, not a library anything links.
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  get_filename_component(_sockact_run_libdir "${CMAKE_INSTALL_BINDIR}/../lib" ABSOLUTE)
else()
  get_filename_component(_sockact_run_libdir "/prefix/${CMAKE_INSTALL_BINDIR}/../lib" ABSOLUTE)
  file(RELATIVE_PATH _sockact_run_libdir "/prefix" "${_sockact_run_libdir}")
endif()
set(SOCKACT_INSTALL_ADOPTDIR "${_sockact_run_libdir}"
    CACHE STRING "Where to install libsockact-adopt.so (relative to the prefix); sockact-run --adopt looks in <bindir>/../lib")
mark_as_advanced(SOCKACT_INSTALL_ADOPTDIR)
if(TARGET sockact-run AND TARGET sockact_adopt)
  get_filename_component(_sockact_adopt_dir "${SOCKACT_INSTALL_ADOPTDIR}" ABSOLUTE
                         BASE_DIR "${CMAKE_INSTALL_PREFIX}")
  set(_sockact_adopt_found OFF)
  foreach(_dir IN ITEMS "${CMAKE_INSTALL_BINDIR}" "${_sockact_run_libdir}")
    get_filename_component(_dir "${_dir}" ABSOLUTE BASE_DIR "${CMAKE_INSTALL_PREFIX}")
    if(_dir STREQUAL _sockact_adopt_dir)
      set(_sockact_adopt_found ON)
    endif()
  endforeach()
  if(NOT _sockact_adopt_found)
    message(WARNING "sockact: SOCKACT_INSTALL_ADOPTDIR=${SOCKACT_INSTALL_ADOPTDIR} is neither "
                    "${CMAKE_INSTALL_BINDIR} nor ${_sockact_run_libdir}: the installed sockact-run --adopt "
                    "will not find libsockact-adopt.so there, and needs --adopt=PATH")
  endif()
endif()

# An install directory as the install script sees it: relative ones under the
# prefix given at install time (cmake --install --prefix).
function(_sockact_install_dir out_var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out_var} "${dir}" PARENT_SCOPE)
  else()
    set(${out_var} "\${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

# _sockact_install_tool(<target> <EXECUTABLE|MODULE> <destination> <page>)
# The target when it was built, and its man page with it (docs/man/<page>.in
# with the version filled in). install(TARGETS ... OPTIONAL) would create the
# destination folders even when it installs nothing, so this is the
# file(INSTALL) that it generates, with --strip, behind the check.
function(_sockact_install_tool target type destination page)
  if(NOT TARGET ${target})
    return()
  endif()
  set(_page "${PROJECT_BINARY_DIR}/man/${page}")
  configure_file("${PROJECT_SOURCE_DIR}/docs/man/${page}.in" "${_page}" @ONLY)
  string(REGEX REPLACE "^.*\\.([1-9])$" "\\1" _section "${page}")
  _sockact_install_dir(_dest "${destination}")
  _sockact_install_dir(_man_dir "${CMAKE_INSTALL_MANDIR}/man${_section}")
  set(_file "$<TARGET_FILE:${target}>")
  set(_name "$<TARGET_FILE_NAME:${target}>")
  # CMAKE_INSTALL_COMPONENT is set when the tools were asked for by name.
  string(CONFIGURE [=[
    if(EXISTS "@_file@")
      file(INSTALL DESTINATION "@_dest@" TYPE @type@ FILES "@_file@")
      if(CMAKE_INSTALL_DO_STRIP AND NOT "@CMAKE_STRIP@" STREQUAL "")
        execute_process(COMMAND "@CMAKE_STRIP@" "$ENV{DESTDIR}@_dest@/@_name@")
      endif()
      file(INSTALL DESTINATION "@_man_dir@" TYPE FILE FILES "@_page@")
    elseif(CMAKE_INSTALL_COMPONENT)
      message(FATAL_ERROR "sockact: @_name@ is not built (@_file@); "
                          "build it first: cmake --build <build dir> --target @target@")
    else()
      message(STATUS "sockact: not installing @_name@, which is not built "
                     "(cmake --build <build dir> first to install the tools too)")
    endif()
  ]=] _code @ONLY)
  install(CODE "${_code}" COMPONENT tools)
endfunction()

_sockact_install_tool(sockact-run EXECUTABLE "${CMAKE_INSTALL_BINDIR}" sockact-run.1)
_sockact_install_tool(sockact_adopt MODULE "${SOCKACT_INSTALL_ADOPTDIR}" libsockact-adopt.8)
