// SPDX-License-Identifier: MIT
// libsockact-adopt.so: exec-transparent adoption. The library takes the fds
// before main() and cleans the environment, so that the children a server
// starts (before or after its bind()) see neither the fds nor LISTEN_*. A
// wrapper, though, does not start the server as a child: it execs it in its
// own process (a shell script's `exec`, sh -c 'exec ...', env, pyenv/mise/asdf
// shims). The pid stays, so the fds are still meant for that process. When a
// process that adopted nothing execs, the exec*() calls here hand everything
// on as the manager passed it: the fds lose FD_CLOEXEC, LISTEN_PID (this pid),
// LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PIDFDID go back into the new
// program's environment, and so does this library's LD_PRELOAD entry, so the
// library loads again there and takes the fds. A child (fork, vfork,
// posix_spawn) is another pid: the fds are not its, and it gets nothing.

#include "adopt.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

namespace sockact_adopt {
namespace {

// Written by the constructor, read by exec*().
pid_t taken_pid = 0;            // the process the fds were taken in
char* saved_fdnames = nullptr;  // LISTEN_FDNAMES as passed, or nullptr
char* saved_pidfdid = nullptr;  // LISTEN_PIDFDID as passed, when it named this process
char* saved_preload = nullptr;  // this library's LD_PRELOAD entry as written
const char* preload_file = "";  // its file name, to find it in an LD_PRELOAD value
std::atomic<bool> told_closed{false};

/// The fds are still the passed ones: 3.. open, and the first ones the same
/// open files as at start.
bool fds_intact(int& bad) {
  for (int fd = 3; fd < 3 + passed_total; ++fd) {
    struct stat st {};
    const int i = fd - 3;
    if (::fstat(fd, &st) < 0 ||
        (i < passed_count && (st.st_ino != passed[i].ino || st.st_dev != passed[i].dev))) {
      bad = fd;
      return false;
    }
  }
  return true;
}

void set_cloexec(bool on) {
  for (int fd = 3; fd < 3 + passed_total; ++fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC);
  }
}

bool starts_with(const char* entry, const char* name) {
  const std::size_t n = std::strlen(name);
  return std::strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/// LD_PRELOAD's value lists this library (by file name).
bool lists_us(const char* value) {
  const std::size_t n = std::strlen(preload_file);
  for (const char* s = value; *s != '\0';) {
    const char* end = s + std::strcspn(s, ": ");
    const char* base = end;
    while (base > s && base[-1] != '/') --base;
    if (static_cast<std::size_t>(end - base) == n && std::strncmp(base, preload_file, n) == 0) return true;
    s = *end != '\0' ? end + 1 : end;
  }
  return false;
}

std::size_t num_len(long v) {
  std::size_t n = 1;
  while (v >= 10) v /= 10, ++n;
  return n;
}

char* put(char* at, const char* s) {
  const std::size_t n = std::strlen(s);
  std::memcpy(at, s, n);
  return at + n;
}

char* put_num(char* at, long v) {
  const std::size_t n = num_len(v);
  for (std::size_t i = n; i > 0; --i, v /= 10) at[i - 1] = static_cast<char>('0' + v % 10);
  return at + n;
}

/// The environment the exec'd program gets: `envp` without any LISTEN_*,
/// with this process's, and with this library in LD_PRELOAD. In one mmap()ed
/// block: no malloc() on an exec path.
class handover_env {
 public:
  explicit handover_env(char* const* envp) {
    std::size_t count = 0, strings = 0;
    const char* preload = nullptr;
    for (char* const* e = envp; e != nullptr && *e != nullptr; ++e, ++count)
      if (starts_with(*e, "LD_PRELOAD")) preload = *e + std::strlen("LD_PRELOAD=");
    // Loaded some other way (/etc/ld.so.preload): LD_PRELOAD stays as it is.
    const bool keep_preload = *saved_preload == '\0' || (preload != nullptr && lists_us(preload));
    strings += std::strlen("LISTEN_PID=") + num_len(::getpid()) + 1;
    strings += std::strlen("LISTEN_FDS=") + num_len(passed_total) + 1;
    if (saved_fdnames != nullptr) strings += std::strlen("LISTEN_FDNAMES=") + std::strlen(saved_fdnames) + 1;
    if (saved_pidfdid != nullptr) strings += std::strlen("LISTEN_PIDFDID=") + std::strlen(saved_pidfdid) + 1;
    if (!keep_preload)
      strings += std::strlen("LD_PRELOAD=") + std::strlen(saved_preload) + 1 +
                 (preload ? std::strlen(preload) : 0) + 1;
    size_ = (count + 6) * sizeof(char*) + strings;
    void* mem = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return;
    mem_ = mem;
    char** out = static_cast<char**>(mem);
    char* text = reinterpret_cast<char*>(out + count + 6);
    std::size_t k = 0;
    auto begin = [&](const char* name) {
      out[k++] = text;
      text = put(text, name);
      return text;
    };
    for (char* const* e = envp; e != nullptr && *e != nullptr; ++e) {
      if (starts_with(*e, "LISTEN_PID") || starts_with(*e, "LISTEN_FDS") ||
          starts_with(*e, "LISTEN_FDNAMES") || starts_with(*e, "LISTEN_PIDFDID") ||
          (!keep_preload && starts_with(*e, "LD_PRELOAD")))
        continue;
      out[k++] = *e;
    }
    text = put_num(begin("LISTEN_PID="), ::getpid());
    *text++ = '\0';
    text = put_num(begin("LISTEN_FDS="), passed_total);
    *text++ = '\0';
    if (saved_fdnames != nullptr) {
      text = put(begin("LISTEN_FDNAMES="), saved_fdnames);
      *text++ = '\0';
    }
    if (saved_pidfdid != nullptr) {
      text = put(begin("LISTEN_PIDFDID="), saved_pidfdid);
      *text++ = '\0';
    }
    if (!keep_preload) {
      text = put(begin("LD_PRELOAD="), saved_preload);
      if (preload != nullptr && *preload != '\0') text = put(put(text, ":"), preload);
      *text++ = '\0';
    }
    out[k] = nullptr;
    envp_ = out;
  }
  ~handover_env() {
    if (mem_ != nullptr) ::munmap(mem_, size_);
  }
  handover_env(const handover_env&) = delete;
  handover_env& operator=(const handover_env&) = delete;

  char* const* envp() const { return envp_; }

 private:
  void* mem_ = nullptr;
  std::size_t size_ = 0;
  char** envp_ = nullptr;
};

/// Whether this exec hands the fds on: this process took them, adopted
/// nothing, and still has them.
bool hands_over(const char* what) {
  // getpid() is a system call here (glibc caches nothing since 2.25), so a
  // vfork() child sees its own pid and gets nothing.
  if (passed_total == 0 || taken_pid == 0 || ::getpid() != taken_pid || adoptions.load() != 0) return false;
  int bad = -1;
  if (!fds_intact(bad)) {
    if (!told_closed.exchange(true))
      line("warning: ")
          .add("exec of ")
          .add(what)
          .add(": passed fd ")
          .num(bad)
          .add(" was closed (or replaced) before it; the passed fds are not handed on to the new program");
    return false;
  }
  return true;
}

/// Runs `run` with the hand-over environment when this exec hands the fds
/// on, else with `envp` as given.
template <typename Run>
int exec_with(const char* what, char* const* envp, Run run) {
  if (!hands_over(what)) return run(envp);
  const int saved = errno;
  handover_env env(envp);
  if (env.envp() == nullptr) return run(envp);
  SOCKACT_ADOPT_DEBUG(
          .add("exec of ")
          .add(what)
          .add(": nothing adopted in this process; its ")
          .num(passed_total)
          .add(" passed fd(s), LISTEN_* and LD_PRELOAD go on to the program it execs (same pid)"));
  set_cloexec(false);
  errno = saved;
  const int r = run(env.envp());
  const int err = errno;
  set_cloexec(true);  // the exec failed: the fds are this program's again
  errno = err;
  return r;
}

using execve_fn = int (*)(const char*, char* const*, char* const*);
using execvpe_fn = int (*)(const char*, char* const*, char* const*);
using fexecve_fn = int (*)(int, char* const*, char* const*);
using execveat_fn = int (*)(int, const char*, char* const*, char* const*, int);
SOCKACT_ADOPT_REAL(execve, execve_fn)
SOCKACT_ADOPT_REAL(execvpe, execvpe_fn)
SOCKACT_ADOPT_REAL(fexecve, fexecve_fn)
SOCKACT_ADOPT_REAL(execveat, execveat_fn)

int do_execve(const char* path, char* const argv[], char* const envp[]) {
  return exec_with(path, envp, [&](char* const* e) { return real_execve()(path, argv, e); });
}

int do_execvpe(const char* file, char* const argv[], char* const envp[]) {
  return exec_with(file, envp, [&](char* const* e) { return real_execvpe()(file, argv, e); });
}

/// execl()'s arguments as an argv on the stack (no malloc: a vfork() child
/// may call it). Returns the count; `argv` must hold count + 1.
std::size_t count_args(const char* arg, va_list ap) {
  std::size_t n = arg != nullptr ? 1 : 0;
  if (arg != nullptr)
    while (va_arg(ap, const char*) != nullptr) ++n;
  return n;
}

}  // namespace

void remember_for_exec(const char* listen_fdnames, const char* listen_pidfdid, const char* preload_entry) {
  saved_fdnames = listen_fdnames != nullptr ? ::strdup(listen_fdnames) : nullptr;
  saved_pidfdid = listen_pidfdid != nullptr ? ::strdup(listen_pidfdid) : nullptr;
  saved_preload = ::strdup(preload_entry != nullptr ? preload_entry : "");
  if (saved_preload == nullptr) return;  // no memory: no hand-over
  const char* slash = std::strrchr(saved_preload, '/');
  preload_file = slash != nullptr ? slash + 1 : saved_preload;
  taken_pid = ::getpid();
}

}  // namespace sockact_adopt

using namespace sockact_adopt;

SOCKACT_ADOPT_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  return do_execve(path, argv, envp);
}

SOCKACT_ADOPT_EXPORT int execv(const char* path, char* const argv[]) noexcept {
  return do_execve(path, argv, environ);
}

SOCKACT_ADOPT_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
  return do_execvpe(file, argv, envp);
}

SOCKACT_ADOPT_EXPORT int execvp(const char* file, char* const argv[]) noexcept {
  return do_execvpe(file, argv, environ);
}

SOCKACT_ADOPT_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) noexcept {
  char what[32] = "fd ";
  put_num(what + 3, fd)[0] = '\0';
  return exec_with(what, envp, [&](char* const* e) { return real_fexecve()(fd, argv, e); });
}

SOCKACT_ADOPT_EXPORT int execveat(int dirfd, const char* path, char* const argv[], char* const envp[],
                                  int flags) noexcept {
  return exec_with(path, envp, [&](char* const* e) {
    if (const auto fn = real_execveat()) return fn(dirfd, path, argv, e, flags);
    return static_cast<int>(real_syscall()(SYS_execveat, dirfd, reinterpret_cast<long>(path),
                                           reinterpret_cast<long>(argv), reinterpret_cast<long>(e), flags,
                                           0));
  });
}

// The execl() family collects its arguments and goes through the calls above,
// as glibc's own does.
#define SOCKACT_ADOPT_ARGV(first, last)                                            \
  va_list ap;                                                                      \
  va_start(ap, last);                                                              \
  va_list count_ap;                                                                \
  va_copy(count_ap, ap);                                                           \
  const std::size_t argc = count_args(first, count_ap);                            \
  va_end(count_ap);                                                                \
  char** argv = static_cast<char**>(__builtin_alloca((argc + 1) * sizeof(char*))); \
  argv[0] = const_cast<char*>(first);                                              \
  for (std::size_t i = 1; i < argc; ++i) argv[i] = va_arg(ap, char*);              \
  if (argc > 0) (void)va_arg(ap, char*); /* the terminating null */                \
  argv[argc] = nullptr

SOCKACT_ADOPT_EXPORT int execl(const char* path, const char* arg, ...) noexcept {
  SOCKACT_ADOPT_ARGV(arg, arg);
  va_end(ap);
  return do_execve(path, argv, environ);
}

SOCKACT_ADOPT_EXPORT int execlp(const char* file, const char* arg, ...) noexcept {
  SOCKACT_ADOPT_ARGV(arg, arg);
  va_end(ap);
  return do_execvpe(file, argv, environ);
}

SOCKACT_ADOPT_EXPORT int execle(const char* path, const char* arg, ...) noexcept {
  SOCKACT_ADOPT_ARGV(arg, arg);
  char* const* envp = va_arg(ap, char* const*);
  va_end(ap);
  return do_execve(path, argv, envp);
}
