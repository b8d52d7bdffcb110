// sockact-run: resolving PROGRAM and naming what keeps it from running.
// SPDX-License-Identifier: MIT

#include "program.hpp"

#include "messages.hpp"

#include <sockact/unique_fd.hpp>

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <optional>

namespace sockact_run {

namespace {

struct interpreter {
  std::string path;
  std::string arg;  // the one optional argument of a #! line
  bool elf = false;
};

bool read_at(int fd, void* buf, std::size_t size, off_t offset) {
  return ::pread(fd, buf, size, offset) == static_cast<ssize_t>(size);
}

// PT_INTERP of an ELF of this machine's byte order, if it has one.
template <typename Ehdr, typename Phdr>
std::optional<std::string> elf_interpreter(int fd) {
  Ehdr eh{};
  if (!read_at(fd, &eh, sizeof eh, 0) || eh.e_phentsize != sizeof(Phdr) || eh.e_phnum > 4096)
    return std::nullopt;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Phdr ph{};
    if (!read_at(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof(Phdr)))) return std::nullopt;
    if (ph.p_type != PT_INTERP) continue;
    if (ph.p_filesz == 0 || ph.p_filesz > 4096) return std::nullopt;
    std::string path(static_cast<std::size_t>(ph.p_filesz), '\0');
    if (!read_at(fd, path.data(), path.size(), static_cast<off_t>(ph.p_offset))) return std::nullopt;
    path.resize(std::strlen(path.c_str()));
    return path;
  }
  return std::nullopt;
}

// The interpreter the kernel would load for `file`: its #! line (read as
// binfmt_script does) or its ELF PT_INTERP.
std::optional<interpreter> read_interpreter(const std::string& file) {
  const sockact::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char head[256];  // the kernel's BINPRM_BUF_SIZE
  const ssize_t n = ::pread(fd.get(), head, sizeof head, 0);
  if (n < 4) return std::nullopt;
  const std::string h(head, static_cast<std::size_t>(n));
  interpreter in;
  if (h.rfind("#!", 0) == 0) {
    const std::string line =
        h.substr(2, h.find('\n') == std::string::npos ? std::string::npos : h.find('\n') - 2);
    const std::size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos) return std::nullopt;
    const std::size_t e = line.find_first_of(" \t", b);
    in.path = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (e != std::string::npos) {
      const std::size_t ab = line.find_first_not_of(" \t", e);
      const std::size_t ae = line.find_last_not_of(" \t\r");
      if (ab != std::string::npos) in.arg = line.substr(ab, ae - ab + 1);
    }
    return in;
  }
  if (h.rfind(ELFMAG, 0) != 0 || n < EI_NIDENT) return std::nullopt;
  const bool little = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
  if (head[EI_DATA] != (little ? ELFDATA2LSB : ELFDATA2MSB)) return std::nullopt;
  std::optional<std::string> path;
  if (head[EI_CLASS] == ELFCLASS64)
    path = elf_interpreter<Elf64_Ehdr, Elf64_Phdr>(fd.get());
  else if (head[EI_CLASS] == ELFCLASS32)
    path = elf_interpreter<Elf32_Ehdr, Elf32_Phdr>(fd.get());
  if (!path || path->empty()) return std::nullopt;  // static, or unreadable
  in.path = *path;
  in.elf = true;
  return in;
}

bool executable_file(const std::string& path, bool& exists) {
  struct stat st {};
  exists = ::stat(path.c_str(), &st) == 0;
  return exists && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// NAME in PATH (an empty entry is the current folder), as execvp() finds it.
bool in_path(const std::string& name, const std::string& search_path) {
  bool exists = false;
  for (const std::string& dir : split(search_path, ':'))
    if (executable_file((dir.empty() ? "." : dir) + "/" + name, exists)) return true;
  return false;
}

// The command a "#!/usr/bin/env [-S] [NAME=VALUE...] COMMAND ..." line runs;
// empty when env is given other options (then env itself reports).
std::string env_command(const std::string& arg) {
  bool split_string = false;
  for (const std::string& word : split(arg, ' ')) {
    if (word.empty()) continue;
    if (word == "-S" && !split_string) {
      split_string = true;
      continue;
    }
    if (word[0] == '-') return "";
    if (word.find('=') != std::string::npos) continue;
    return word;
  }
  return "";
}

struct problem {
  int status = 0;
  std::string text;
};

// Whether an ELF (of this machine's byte order) has a section named `name`.
template <typename Ehdr, typename Shdr>
bool elf_has_section(int fd, const char* name) {
  Ehdr eh{};
  if (!read_at(fd, &eh, sizeof eh, 0) || eh.e_shentsize != sizeof(Shdr) || eh.e_shnum > 65535 ||
      eh.e_shstrndx >= eh.e_shnum)
    return false;
  Shdr names{};
  if (!read_at(fd, &names, sizeof names, static_cast<off_t>(eh.e_shoff + eh.e_shstrndx * sizeof(Shdr))))
    return false;
  const std::size_t want = std::strlen(name) + 1;
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    Shdr sh{};
    if (!read_at(fd, &sh, sizeof sh, static_cast<off_t>(eh.e_shoff + i * sizeof(Shdr)))) return false;
    if (sh.sh_name >= names.sh_size) continue;
    char got[64] = {};
    if (want > sizeof got || !read_at(fd, got, want, static_cast<off_t>(names.sh_offset + sh.sh_name)))
      continue;
    if (std::memcmp(got, name, want) == 0) return true;
  }
  return false;
}

// Why LD_PRELOAD cannot work in the ELF `file`, if it cannot: no dynamic
// loader (static), or Go, whose net package makes its system calls itself.
std::optional<std::string> preload_obstacle(const std::string& file) {
  const sockact::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  unsigned char ident[EI_NIDENT] = {};
  if (!read_at(fd.get(), ident, sizeof ident, 0) || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
    return std::nullopt;
  const bool little = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
  if (ident[EI_DATA] != (little ? ELFDATA2LSB : ELFDATA2MSB)) return std::nullopt;
  const bool wide = ident[EI_CLASS] == ELFCLASS64;
  const bool go = wide ? elf_has_section<Elf64_Ehdr, Elf64_Shdr>(fd.get(), ".note.go.buildid")
                       : elf_has_section<Elf32_Ehdr, Elf32_Shdr>(fd.get(), ".note.go.buildid");
  if (go)
    return file +
           " is a Go program: Go's net package makes its bind() system call itself, past the "
           "dynamic linker";
  const std::optional<std::string> loader = wide ? elf_interpreter<Elf64_Ehdr, Elf64_Phdr>(fd.get())
                                                 : elf_interpreter<Elf32_Ehdr, Elf32_Phdr>(fd.get());
  if (!loader || loader->empty())
    return file + " is statically linked: no dynamic loader runs, so nothing reads LD_PRELOAD";
  return std::nullopt;
}

// The file the kernel finally runs for `program`: itself, or down its #!
// lines (through "#!/usr/bin/env NAME", NAME in `child_path`).
std::string final_executable(const std::string& program, const std::string& child_path, int depth = 0) {
  const std::optional<interpreter> in = read_interpreter(program);
  if (!in || in->elf || depth >= 4) return program;
  const std::size_t slash = in->path.rfind('/');
  if (in->path.substr(slash == std::string::npos ? 0 : slash + 1) == "env") {
    const std::string command = env_command(in->arg);
    if (command.empty()) return in->path;
    if (command.find('/') != std::string::npos) return final_executable(command, child_path, depth + 1);
    bool exists = false;
    for (const std::string& dir : split(child_path, ':')) {
      const std::string candidate = (dir.empty() ? "." : dir) + "/" + command;
      if (executable_file(candidate, exists)) return final_executable(candidate, child_path, depth + 1);
    }
    return in->path;
  }
  return final_executable(in->path, child_path, depth + 1);
}

// What keeps `program` from running beyond the file itself: its interpreter
// (and that one's, for a script whose interpreter is a script).
std::optional<problem> interpreter_problem(const std::string& program, const std::string& child_path,
                                           int depth = 0) {
  const std::optional<interpreter> in = read_interpreter(program);
  if (!in) return std::nullopt;
  const std::string what = program + ": " + (in->elf ? "ELF interpreter " : "interpreter ") + in->path;
  bool exists = false;
  if (!executable_file(in->path, exists)) {
    if (!exists)
      return problem{
          exit_not_found,
          what + " not found" + (in->elf ? " (a program built for another system or C library?)" : "")};
    return problem{exit_cannot_exec, what + " is not an executable file"};
  }
  if (depth < 4 && !in->elf)
    if (std::optional<problem> p = interpreter_problem(in->path, child_path, depth + 1)) return p;
  const std::size_t slash = in->path.rfind('/');
  if (!in->elf && in->path.substr(slash == std::string::npos ? 0 : slash + 1) == "env") {
    const std::string command = env_command(in->arg);
    if (!command.empty() && command.find('/') != std::string::npos && !executable_file(command, exists))
      return problem{exists ? exit_cannot_exec : exit_not_found,
                     program + ": interpreter " + command + " (#!" + in->path + " " + in->arg + ") " +
                         (exists ? "is not an executable file" : "not found")};
    if (!command.empty() && command.find('/') == std::string::npos && !in_path(command, child_path))
      return problem{exit_not_found, program + ": interpreter \"" + command + "\" (#!" + in->path + " " +
                                         in->arg + ") not found in PATH"};
  }
  return std::nullopt;
}

}  // namespace

std::string resolve_program(const std::string& name, const std::string& child_path) {
  bool exists = false;
  std::string found;
  if (name.find('/') != std::string::npos) {
    if (!executable_file(name, exists)) {
      if (exists) die(exit_cannot_exec, "PROGRAM \"" + name + "\" is not an executable file");
      die(exit_not_found, "PROGRAM \"" + name + "\" not found");
    }
    found = name;
  } else {
    const char* path = std::getenv("PATH");
    bool seen = false;
    for (const std::string& dir : split(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
      const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
      if (executable_file(candidate, exists)) {
        found = candidate;
        break;
      }
      seen = seen || exists;
    }
    if (found.empty() && seen)
      die(exit_cannot_exec, "PROGRAM \"" + name + "\" found in PATH but not executable");
    if (found.empty()) die(exit_not_found, "PROGRAM \"" + name + "\" not found in PATH");
  }
  if (const std::optional<problem> p = interpreter_problem(found, child_path)) die(p->status, p->text);
  return found;
}

std::string exec_failure(const std::string& path, int err, const std::string& child_path) {
  bool exists = false;
  executable_file(path, exists);
  if (exists && (err == ENOENT || err == EACCES))
    if (const std::optional<problem> p = interpreter_problem(path, child_path)) return p->text;
  if (err == ENOEXEC) return path + ": not a format the kernel runs (a script without a #! line?)";
  return path + ": " + errno_text(err);
}

std::optional<std::string> adopt_obstacle(const std::string& program, const std::string& child_path) {
  const std::string runs = final_executable(program, child_path);
  std::optional<std::string> why = preload_obstacle(runs);
  if (!why) return std::nullopt;
  if (runs != program) *why = program + " runs " + runs + "; " + *why;
  return "--adopt: " + *why +
         ". libsockact-adopt.so cannot take the passed sockets there: the program will bind a port of its "
         "own and clients of the passed ones wait unanswered, unless it reads LISTEN_FDS itself";
}

std::string adopt_library(const std::string& given) {
  const auto usable = [](const std::string& p) { return ::access(p.c_str(), R_OK) == 0; };
  if (!given.empty()) {
    char* real = ::realpath(given.c_str(), nullptr);
    if (real == nullptr || !usable(real)) {
      std::free(real);
      die(exit_usage, "--adopt=" + given + ": " + errno_text(errno == 0 ? ENOENT : errno));
    }
    std::string out = real;
    std::free(real);
    return out;
  }
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    die(exit_usage, "--adopt: cannot read /proc/self/exe to find libsockact-adopt.so; give --adopt=PATH");
  const std::string bin(exe, static_cast<std::size_t>(n));
  const std::string dir = bin.substr(0, bin.rfind('/'));
  for (const std::string& p : {dir + "/libsockact-adopt.so", dir + "/../lib/libsockact-adopt.so"})
    if (usable(p)) return p;
  die(exit_usage, "--adopt: libsockact-adopt.so is neither in " + dir + " nor in " + dir +
                      "/../lib (build the target sockact_adopt, or give --adopt=PATH)");
}

}  // namespace sockact_run
