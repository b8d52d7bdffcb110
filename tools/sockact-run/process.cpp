// sockact-run: starting PROGRAM and finding what is left of it.
// SPDX-License-Identifier: MIT

#include "process.hpp"

#include "messages.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <map>

extern char** environ;

namespace sockact_run {

child_environment::child_environment(const options& o, const std::vector<held_socket>& sockets,
                                     const std::string& notify_path, const std::string& adopt) {
  const std::vector<std::string> ours = {"LISTEN_PID",    "LISTEN_FDS",   "LISTEN_FDNAMES", "NOTIFY_SOCKET",
                                         "WATCHDOG_USEC", "WATCHDOG_PID", "REMOTE_ADDR",    "REMOTE_PORT"};
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string s = *e;
    const std::string name = s.substr(0, s.find('='));
    bool skip = false;
    for (const std::string& n : ours) skip = skip || n == name;
    if (!skip && s.find('=') != std::string::npos) env[name] = s.substr(name.size() + 1);
  }
  for (const std::string& e : o.setenv) {
    const std::size_t eq = e.find('=');
    if (eq != std::string::npos) env[e.substr(0, eq)] = e.substr(eq + 1);
  }
  if (!adopt.empty()) {
    const auto it = env.find("LD_PRELOAD");
    env["LD_PRELOAD"] = it == env.end() || it->second.empty() ? adopt : adopt + ":" + it->second;
  }
  env["NOTIFY_SOCKET"] = notify_path;
  if (!o.inetd) {
    std::string names;
    for (const held_socket& s : sockets) names += (names.empty() ? "" : ":") + s.name;
    env["LISTEN_FDS"] = o.accept ? "1" : std::to_string(sockets.size());
    env["LISTEN_FDNAMES"] = o.accept ? "connection" : names;
  }
  if (o.watchdog.count() > 0) env["WATCHDOG_USEC"] = std::to_string(o.watchdog.count() * 1000);
  for (const auto& [k, v] : env) {
    if (k == "LISTEN_FDS") {
      has_listen_ = true;
      listen_fds_ = strings_.size();
    }
    if (k == "LISTEN_FDNAMES") listen_fdnames_ = strings_.size();
    strings_.push_back(k + "=" + v);
  }
  if (!o.inetd) add_pid_slot("LISTEN_PID");
  if (o.watchdog.count() > 0) add_pid_slot("WATCHDOG_PID");
  strings_.push_back("REMOTE_ADDR=");  // set per connection in --accept mode
  strings_.push_back("REMOTE_PORT=");
}

void child_environment::set_remote(const std::string& addr, const std::string& port) {
  strings_[strings_.size() - 2] = "REMOTE_ADDR=" + addr;
  strings_[strings_.size() - 1] = "REMOTE_PORT=" + port;
}

void child_environment::set_listen(std::size_t count, const std::string& names) {
  if (!has_listen_) return;  // --inetd
  strings_[listen_fds_] = "LISTEN_FDS=" + std::to_string(count);
  strings_[listen_fdnames_] = "LISTEN_FDNAMES=" + names;
}

char** child_environment::envp() {
  pointers_.clear();
  for (std::string& s : strings_)
    if (s != "REMOTE_ADDR=" && s != "REMOTE_PORT=") pointers_.push_back(s.data());
  pointers_.push_back(nullptr);
  return pointers_.data();
}

void child_environment::fill_pids() noexcept {
  char digits[pid_width];
  std::size_t n = 0;
  for (auto p = static_cast<unsigned long>(::getpid()); p > 0 || n == 0; p /= 10)
    digits[n++] = static_cast<char>('0' + p % 10);
  for (const std::size_t i : pid_slots_) {
    char* out = &strings_[i][strings_[i].size() - pid_width];
    for (std::size_t k = 0; k < pid_width; ++k) out[k] = k < n ? digits[n - 1 - k] : '\0';
  }
}

void child_environment::add_pid_slot(const char* name) {
  pid_slots_.push_back(strings_.size());
  strings_.push_back(std::string(name) + "=" + std::string(pid_width, ' '));
}

bool spawn_pipes::open() noexcept {
  int a[2], b[2];
  if (::pipe2(a, O_CLOEXEC) < 0) return false;
  report_read.reset(a[0]);
  report_write.reset(a[1]);
  if (::pipe2(b, O_CLOEXEC) < 0) return false;
  stderr_read.reset(b[0]);
  stderr_write.reset(b[1]);
  return true;
}

spawned spawn(const spawn_request& request, spawn_pipes pipes) {
  char** envp = request.env->envp();
  // The child may not allocate: room for the fds' temporary copies now.
  std::vector<int> moved(request.fds.size());
  const pid_t parent = ::getpid();
  spawned out;
  out.pid = ::fork();
  if (out.pid < 0) {
    out.fork_error = errno;
    return out;
  }
  if (out.pid == 0) {
    // The child: async-signal-safe calls only from here to execve().
    // A group of its own: a terminal's Ctrl-C reaches sockact-run only, which
    // forwards it once, and a stop reaches PROGRAM's own children too.
    ::setpgid(0, 0);
    // If sockact-run dies, so does PROGRAM: nobody else would stop it. Then
    // the race: sockact-run may have died before the prctl().
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) ::_exit(exit_runtime);
    const std::size_t count = request.fds.size();
    const int n = static_cast<int>(count);
    // Everything we still need goes above 3+n first, so that placing the
    // fds at 3, 4, ... overwrites none of it.
    const int report = ::fcntl(pipes.report_write.get(), F_DUPFD_CLOEXEC, 3 + n);
    const int err = ::fcntl(pipes.stderr_write.get(), F_DUPFD_CLOEXEC, 3 + n);
    for (std::size_t i = 0; i < count; ++i) moved[i] = ::fcntl(request.fds[i], F_DUPFD_CLOEXEC, 3 + n);
    if (request.inetd) {
      ::dup2(moved[0], 0);
      ::dup2(moved[0], 1);
    } else {
      for (std::size_t i = 0; i < count; ++i) ::dup2(moved[i], 3 + static_cast<int>(i));  // without O_CLOEXEC
    }
    ::dup2(err, 2);
    request.env->fill_pids();
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (const int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE})
      ::sigaction(s, &dfl, nullptr);
    ::sigprocmask(SIG_SETMASK, request.mask, nullptr);
    ::execve(request.path->c_str(), request.argv, envp);
    const int e = errno;
    [[maybe_unused]] const ssize_t w = ::write(report, &e, sizeof e);
    ::_exit(e == ENOENT ? exit_not_found : exit_cannot_exec);
  }
  // Also here: a signal to the group must not find it missing because the
  // child has not run yet. EACCES once it has exec'd: it did it itself.
  ::setpgid(out.pid, out.pid);
  pipes.report_write.reset();
  pipes.stderr_write.reset();
  int e = 0;
  ssize_t got = 0;
  do got = ::read(pipes.report_read.get(), &e, sizeof e);
  while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof e)) out.exec_error = e;
  out.stderr_read = std::move(pipes.stderr_read);
  return out;
}

bool alive(pid_t target) noexcept {
  return ::kill(target, 0) == 0 || errno == EPERM;
}

namespace {

// A small /proc file, whole; empty when it cannot be read. No iostreams:
// they would double the size of the static binary for containers.
std::string read_small_file(const std::string& path) {
  std::string out;
  const sockact::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0 && out.size() < 1 << 20)
    out.append(buf, static_cast<std::size_t>(n));
  return out;
}

void add_numbers(const std::string& text, std::vector<pid_t>& out) {
  const char* p = text.c_str();
  char* end = nullptr;
  for (long v = std::strtol(p, &end, 10); end != p; v = std::strtol(p, &end, 10)) {
    if (v > 0) out.push_back(static_cast<pid_t>(v));
    p = end;
  }
}

}  // namespace

std::vector<pid_t> children_of_self() {
  std::vector<pid_t> out;
  const pid_t me = ::getpid();
  // Each thread's children (CONFIG_PROC_CHILDREN); else every process's parent.
  const std::string task = "/proc/" + std::to_string(me) + "/task";
  if (DIR* d = ::opendir(task.c_str())) {
    bool have_file = false;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      const std::string file = task + "/" + e->d_name + "/children";
      have_file = have_file || ::access(file.c_str(), R_OK) == 0;
      add_numbers(read_small_file(file), out);
    }
    ::closedir(d);
    if (have_file) return out;
  }
  if (DIR* d = ::opendir("/proc")) {
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      const std::string stat = read_small_file(std::string("/proc/") + e->d_name + "/stat");
      const std::size_t close = stat.rfind(')');  // the command may contain spaces and ')'
      if (close == std::string::npos || close + 4 >= stat.size()) continue;
      // ") S PPID ...": the state, then the parent.
      const long ppid = std::strtol(stat.c_str() + close + 4, nullptr, 10);
      if (ppid == me) out.push_back(static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10)));
    }
    ::closedir(d);
  }
  return out;
}

}  // namespace sockact_run
