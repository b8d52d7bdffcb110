// sockact-run: what PROGRAM is, and why it cannot run (a missing program, or
// a missing #! or ELF interpreter).
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_RUN_PROGRAM_HPP
#define SOCKACT_RUN_PROGRAM_HPP

#include <optional>
#include <string>

namespace sockact_run {

// PROGRAM as execve() wants it: a path, searched in PATH like execvp(), and
// checked down to its interpreter ("#!/usr/bin/foo", "#!/usr/bin/env foo",
// an ELF's dynamic loader). Here, before listening, so that a typo or a
// missing interpreter is an error at once: exits with 127 (not found) or 126.
// @param child_path PATH as PROGRAM gets it, for "#!/usr/bin/env NAME".
std::string resolve_program(const std::string& name, const std::string& child_path);

// Why execve(path) failed with `err`, in words:
// "./app.sh: interpreter /usr/bin/foo not found", else strerror(err).
std::string exec_failure(const std::string& path, int err, const std::string& child_path);

// --adopt: why the preload library cannot work in `program` (or the program
// its #! lines run), in words, when it cannot: a static ELF, or Go.
std::optional<std::string> adopt_obstacle(const std::string& program, const std::string& child_path);

// --adopt: the library's absolute path; exits with 2 when it is not there.
std::string adopt_library(const std::string& given);

}  // namespace sockact_run

#endif  // SOCKACT_RUN_PROGRAM_HPP
