# Driver for the packaging tests: cmake -DMODE=<mode> ... -P run_consumer.cmake
#
# Each mode builds a consumer of sockact in a fresh WORK_DIR with the parent
# build's generator and compiler, runs it, and fails (non-zero exit) at the
# first step that goes wrong. On success WORK_DIR is removed; on failure it is
# kept for inspection and wiped by the next run.
#
# Modes:
#   install           cmake --install the parent build into PREFIX and check the layout
#   install_without_build
#                     a fresh build directory of SOURCE_DIR with the default options,
#                     installed right after configure: the development component only
#                     (tools skipped, --component tools refused), usable by find_package
#   uninstall         remove PREFIX (fixture cleanup)
#   consumer_warnings user code against the headers in PREFIX, -Wall -Wextra -Werror at
#                     -O2 and -O3 (with libuv's adopt() when pkg-config finds libuv)
#   find_package      consumer finds the package in PREFIX via CMAKE_PREFIX_PATH
#   build_tree        consumer finds the package with sockact_DIR=<parent build dir>
#   pkg_config        consumer compiled by hand with pkg-config flags from PREFIX
#   add_subdirectory  consumer does add_subdirectory(<source root>)
#   fetchcontent      consumer uses FetchContent with SOURCE_DIR <source root>
#   libsystemd        sockact configured and installed with SOCKACT_USE_LIBSYSTEMD=ON,
#                     then used through find_package and through pkg-config
#   wrong_version     negative control: the consumer must refuse a wrong version
#
# Inputs (all -D): MODE SOURCE_DIR PARENT_BINARY_DIR PACKAGING_DIR WORK_DIR PREFIX
#   EXPECTED_VERSION GENERATOR MAKE_PROGRAM CXX_COMPILER BUILD_TYPE CONFIG
#   PKG_CONFIG CMAKEDIR PKGCONFIGDIR INCLUDEDIR MANDIR PARENT_USE_LIBSYSTEMD

cmake_minimum_required(VERSION 3.14...3.25)

foreach(_var IN ITEMS MODE SOURCE_DIR PACKAGING_DIR WORK_DIR EXPECTED_VERSION GENERATOR CXX_COMPILER)
  if("${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${_var}=... is required")
  endif()
endforeach()

# The consumer checks that listen_fds() finds nothing, which is only true when
# this process was not itself socket-activated.
foreach(_var IN ITEMS LISTEN_PID LISTEN_FDS LISTEN_FDNAMES)
  unset(ENV{${_var}})
endforeach()

# Run a command, echoing it; stop the test if it fails.
function(step what)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "[${MODE}] ${what}: ${_pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${what} failed (${_rc}); files kept in ${WORK_DIR}")
  endif()
endfunction()

# Arguments that make a consumer build like the parent build.
set(_toolchain_args -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
if(MAKE_PROGRAM)
  list(APPEND _toolchain_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(BUILD_TYPE)
  list(APPEND _toolchain_args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()
set(_config_args "")
if(CONFIG)
  set(_config_args --config "${CONFIG}")
endif()

# Configure, build and run the consumer project in ${PACKAGING_DIR}/<project>.
# Extra arguments go to the configure step.
function(build_and_run_consumer project)
  set(_bin "${WORK_DIR}/${project}-build")
  step("configure ${project} consumer"
       "${CMAKE_COMMAND}" -S "${PACKAGING_DIR}/${project}" -B "${_bin}" ${_toolchain_args} ${ARGN})
  step("build ${project} consumer" "${CMAKE_COMMAND}" --build "${_bin}" ${_config_args})
  # Multi-config generators put the program in a per-configuration folder.
  set(_exe "${_bin}/sockact_consumer")
  if(CONFIG AND EXISTS "${_bin}/${CONFIG}/sockact_consumer")
    set(_exe "${_bin}/${CONFIG}/sockact_consumer")
  endif()
  step("run ${project} consumer" "${_exe}")
  # The source-tree consumers also build the program against sockact::compiled.
  if(EXISTS "${_exe}_compiled")
    step("run ${project} consumer (sockact::compiled)" "${_exe}_compiled")
  endif()
endfunction()

# Install the sockact build in ${build_dir} into ${prefix}.
function(install_build build_dir prefix)
  # `cmake --install` rewrites install_manifest.txt in the build directory;
  # keep a real install's manifest in the parent build intact.
  set(_manifest "${build_dir}/install_manifest.txt")
  set(_saved "${WORK_DIR}/install_manifest.txt.saved")
  if(EXISTS "${_manifest}")
    file(RENAME "${_manifest}" "${_saved}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${build_dir}" --prefix "${prefix}" ${_config_args}
                  RESULT_VARIABLE _rc)
  file(REMOVE "${_manifest}")
  if(EXISTS "${_saved}")
    file(RENAME "${_saved}" "${_manifest}")
  endif()
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] cmake --install ${build_dir} --prefix ${prefix} failed (${_rc})")
  endif()
endfunction()

# Run pkg-config with PKG_CONFIG_PATH=${pc_path}; store its stdout in ${out_var}.
function(pkg_config out_var pc_path)
  set(ENV{PKG_CONFIG_PATH} "${pc_path}")
  execute_process(COMMAND "${PKG_CONFIG}" ${ARGN}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] PKG_CONFIG_PATH=${pc_path} pkg-config ${ARGN} failed (${_rc})")
  endif()
  set(${out_var} "${_out}" PARENT_SCOPE)
endfunction()

# Compile main.cpp by hand with the flags pkg-config gives for the sockact.pc
# under ${prefix}, as a Makefile user would, and run it.
function(pkg_config_consumer prefix)
  set(_pc_path "${prefix}/${PKGCONFIGDIR}")
  pkg_config(_modversion "${_pc_path}" --modversion sockact)
  if(NOT _modversion STREQUAL EXPECTED_VERSION)
    message(FATAL_ERROR "[${MODE}] pkg-config --modversion sockact is '${_modversion}', "
                        "expected '${EXPECTED_VERSION}'")
  endif()
  pkg_config(_cflags "${_pc_path}" --cflags sockact)
  pkg_config(_libs "${_pc_path}" --libs sockact)
  separate_arguments(_cflags UNIX_COMMAND "${_cflags}")
  separate_arguments(_libs UNIX_COMMAND "${_libs}")
  # The -I must lead into this prefix, not to some other sockact.
  get_filename_component(_want "${prefix}/${INCLUDEDIR}" REALPATH)
  set(_include_ok FALSE)
  foreach(_flag IN LISTS _cflags)
    if(_flag MATCHES "^-I(.+)")
      get_filename_component(_dir "${CMAKE_MATCH_1}" REALPATH)
      if(_dir STREQUAL _want)
        set(_include_ok TRUE)
      endif()
    endif()
  endforeach()
  if(NOT _include_ok)
    message(FATAL_ERROR "[${MODE}] pkg-config --cflags sockact does not add -I${_want}: '${_cflags}'")
  endif()
  set(_exe "${WORK_DIR}/pkg_config_consumer")
  step("compile pkg-config consumer"
       "${CXX_COMPILER}" -std=c++17 ${_cflags} "-DEXPECTED_VERSION=\"${_modversion}\"" ${ARGN}
       "${PACKAGING_DIR}/main.cpp" -o "${_exe}" ${_libs})
  step("run pkg-config consumer" "${_exe}")
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(PARENT_USE_LIBSYSTEMD)
  set(_expect_libsystemd ON)
  set(_expect_libsystemd_define -DSOCKACT_EXPECT_LIBSYSTEMD=1)
else()
  set(_expect_libsystemd OFF)
  set(_expect_libsystemd_define "")
endif()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  install_build("${PARENT_BINARY_DIR}" "${PREFIX}")
  # The layout that find_package and pkg-config users rely on.
  foreach(_file IN ITEMS
      "${INCLUDEDIR}/sockact/sockact.hpp"
      "${INCLUDEDIR}/sockact/version.hpp"
      "${CMAKEDIR}/sockactConfig.cmake"
      "${CMAKEDIR}/sockactConfigVersion.cmake"
      "${CMAKEDIR}/sockactTargets.cmake"
      "${PKGCONFIGDIR}/sockact.pc")
    if(NOT EXISTS "${PREFIX}/${_file}")
      message(FATAL_ERROR "[install] ${_file} is missing from the install prefix ${PREFIX}")
    endif()
  endforeach()
  # Only the headers: nothing from the source tree's other folders.
  file(GLOB _top RELATIVE "${PREFIX}/${INCLUDEDIR}" "${PREFIX}/${INCLUDEDIR}/*")
  if(NOT _top STREQUAL "sockact")
    message(FATAL_ERROR "[install] unexpected entries in ${PREFIX}/${INCLUDEDIR}: ${_top}")
  endif()

elseif(MODE STREQUAL "install_without_build")
  # A fresh clone's `cmake -B b && cmake --install b`: no build, default options.
  set(_sockact_build "${WORK_DIR}/sockact-build")
  set(_prefix "${WORK_DIR}/prefix")
  step("configure sockact with the default options"
       "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${_sockact_build}" ${_toolchain_args})
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${_sockact_build}" --prefix "${_prefix}" ${_config_args}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  message(STATUS "${_out}")
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] cmake --install right after configure failed (${_rc})")
  endif()
  if(NOT _out MATCHES "not installing sockact-run, which is not built")
    message(FATAL_ERROR "[${MODE}] the install does not say that it skipped sockact-run")
  endif()
  # Exactly the development component: the headers, the package files, sockact(7).
  file(GLOB_RECURSE _files RELATIVE "${_prefix}" "${_prefix}/*")
  list(FILTER _files EXCLUDE REGEX "^${INCLUDEDIR}/sockact/")
  list(SORT _files)
  set(_expected
      "${CMAKEDIR}/sockactConfig.cmake" "${CMAKEDIR}/sockactConfigVersion.cmake"
      "${CMAKEDIR}/sockactTargets.cmake" "${PKGCONFIGDIR}/sockact.pc" "${MANDIR}/man7/sockact.7")
  list(SORT _expected)
  if(NOT _files STREQUAL _expected)
    message(FATAL_ERROR "[${MODE}] installed besides the headers: '${_files}', expected '${_expected}'")
  endif()
  if(NOT EXISTS "${_prefix}/${INCLUDEDIR}/sockact/sockact.hpp")
    message(FATAL_ERROR "[${MODE}] the headers are missing from ${_prefix}/${INCLUDEDIR}")
  endif()
  # No empty folders for the tools that were skipped.
  foreach(_dir IN ITEMS bin lib)
    if(EXISTS "${_prefix}/${_dir}")
      message(FATAL_ERROR "[${MODE}] ${_prefix}/${_dir} exists, though no tool was installed")
    endif()
  endforeach()
  # The tools, asked for by name, are refused until built, and install nothing.
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${_sockact_build}" --prefix "${WORK_DIR}/tools"
                          --component tools ${_config_args}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  if(_rc EQUAL 0 OR NOT _out MATCHES "sockact-run is not built" OR EXISTS "${WORK_DIR}/tools")
    message(FATAL_ERROR "[${MODE}] cmake --install --component tools before a build: exit ${_rc}, "
                        "output '${_out}'; expected a failure that names the target, and no files")
  endif()
  # The development component by name: the same files.
  step("install the development component"
       "${CMAKE_COMMAND}" --install "${_sockact_build}" --prefix "${WORK_DIR}/development"
       --component development ${_config_args})
  file(GLOB_RECURSE _dev RELATIVE "${WORK_DIR}/development" "${WORK_DIR}/development/*")
  file(GLOB_RECURSE _all RELATIVE "${_prefix}" "${_prefix}/*")
  list(SORT _dev)
  list(SORT _all)
  if(NOT _dev STREQUAL _all)
    message(FATAL_ERROR "[${MODE}] --component development installs '${_dev}', the default install '${_all}'")
  endif()
  build_and_run_consumer(find_package
    "-DCMAKE_PREFIX_PATH=${_prefix}"
    "-DSOCKACT_EXPECTED_VERSION=${EXPECTED_VERSION}"
    "-DSOCKACT_EXPECTED_DIR=${_prefix}/${CMAKEDIR}"
    -DSOCKACT_EXPECT_LIBSYSTEMD=OFF)

elseif(MODE STREQUAL "consumer_warnings")
  set(_flags "")
  execute_process(COMMAND "${PKG_CONFIG}" --cflags libuv RESULT_VARIABLE _rc
                  OUTPUT_VARIABLE _uv ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_rc EQUAL 0)
    separate_arguments(_uv UNIX_COMMAND "${_uv}")
    set(_flags ${_uv} -DSOCKACT_CONSUMER_LIBUV=1)
  else()
    message(STATUS "[${MODE}] pkg-config finds no libuv: the core headers only")
  endif()
  foreach(_opt IN ITEMS -O2 -O3)
    step("compile user code at ${_opt}"
         "${CXX_COMPILER}" -std=c++17 ${_opt} -Wall -Wextra -Werror "-I${PREFIX}/${INCLUDEDIR}" ${_flags}
         -c "${PACKAGING_DIR}/consumer_warnings.cpp" -o "${WORK_DIR}/consumer_warnings${_opt}.o")
  endforeach()

elseif(MODE STREQUAL "uninstall")
  file(REMOVE_RECURSE "${PREFIX}")

elseif(MODE STREQUAL "find_package")
  build_and_run_consumer(find_package
    "-DCMAKE_PREFIX_PATH=${PREFIX}"
    "-DSOCKACT_EXPECTED_VERSION=${EXPECTED_VERSION}"
    "-DSOCKACT_EXPECTED_DIR=${PREFIX}/${CMAKEDIR}"
    "-DSOCKACT_EXPECT_LIBSYSTEMD=${_expect_libsystemd}")

elseif(MODE STREQUAL "build_tree")
  build_and_run_consumer(find_package
    "-Dsockact_DIR=${PARENT_BINARY_DIR}"
    "-DSOCKACT_EXPECTED_VERSION=${EXPECTED_VERSION}"
    "-DSOCKACT_EXPECTED_DIR=${PARENT_BINARY_DIR}"
    "-DSOCKACT_EXPECT_LIBSYSTEMD=${_expect_libsystemd}")

elseif(MODE STREQUAL "pkg_config")
  pkg_config_consumer("${PREFIX}" ${_expect_libsystemd_define})

elseif(MODE STREQUAL "add_subdirectory" OR MODE STREQUAL "fetchcontent")
  build_and_run_consumer(${MODE}
    "-DSOCKACT_SOURCE_DIR=${SOURCE_DIR}"
    "-DSOCKACT_EXPECTED_VERSION=${EXPECTED_VERSION}")

elseif(MODE STREQUAL "libsystemd")
  # A separate sockact build with the option on; nothing to compile, so
  # configure and install are enough.
  set(_sockact_build "${WORK_DIR}/sockact-build")
  set(_prefix "${WORK_DIR}/prefix")
  step("configure sockact with SOCKACT_USE_LIBSYSTEMD=ON"
       "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${_sockact_build}" ${_toolchain_args}
       -DSOCKACT_USE_LIBSYSTEMD=ON -DSOCKACT_BUILD_TESTS=OFF -DSOCKACT_BUILD_EXAMPLES=OFF -DSOCKACT_BUILD_TOOLS=OFF
       -DSOCKACT_INSTALL=ON)
  install_build("${_sockact_build}" "${_prefix}")
  build_and_run_consumer(find_package
    "-DCMAKE_PREFIX_PATH=${_prefix}"
    "-DSOCKACT_EXPECTED_VERSION=${EXPECTED_VERSION}"
    "-DSOCKACT_EXPECTED_DIR=${_prefix}/${CMAKEDIR}"
    -DSOCKACT_EXPECT_LIBSYSTEMD=ON)
  # sockact.pc must carry the dependency too.
  pkg_config(_pc "${_prefix}/${PKGCONFIGDIR}" --print-requires sockact)
  if(NOT _pc MATCHES "(^|\n)libsystemd")
    message(FATAL_ERROR "[libsystemd] sockact.pc does not require libsystemd: '${_pc}'")
  endif()
  pkg_config(_cflags "${_prefix}/${PKGCONFIGDIR}" --cflags sockact)
  if(NOT _cflags MATCHES "-DSOCKACT_USE_LIBSYSTEMD=1")
    message(FATAL_ERROR "[libsystemd] sockact.pc Cflags lack -DSOCKACT_USE_LIBSYSTEMD=1: '${_cflags}'")
  endif()
  pkg_config_consumer("${_prefix}" -DSOCKACT_EXPECT_LIBSYSTEMD=1)

elseif(MODE STREQUAL "wrong_version")
  # Negative control: the same consumer as add_subdirectory, told to expect a
  # version sockact is not. It must build, then exit non-zero at run time.
  set(_bin "${WORK_DIR}/add_subdirectory-build")
  step("configure consumer expecting a wrong version"
       "${CMAKE_COMMAND}" -S "${PACKAGING_DIR}/add_subdirectory" -B "${_bin}" ${_toolchain_args}
       "-DSOCKACT_SOURCE_DIR=${SOURCE_DIR}" "-DSOCKACT_EXPECTED_VERSION=${EXPECTED_VERSION}.999")
  step("build consumer" "${CMAKE_COMMAND}" --build "${_bin}" ${_config_args})
  set(_exe "${_bin}/sockact_consumer")
  if(CONFIG AND EXISTS "${_bin}/${CONFIG}/sockact_consumer")
    set(_exe "${_bin}/${CONFIG}/sockact_consumer")
  endif()
  execute_process(COMMAND "${_exe}" RESULT_VARIABLE _rc ERROR_VARIABLE _err)
  message(STATUS "[wrong_version] consumer exited with '${_rc}': ${_err}")
  if(_rc EQUAL 0 OR NOT _err MATCHES "version mismatch")
    message(FATAL_ERROR "[wrong_version] the consumer accepted a wrong version; "
                        "the packaging tests could not catch one")
  endif()

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
message(STATUS "[${MODE}] passed")
