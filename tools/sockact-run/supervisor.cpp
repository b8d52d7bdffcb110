// sockact-run: the loop.
// SPDX-License-Identifier: MIT

#include "supervisor.hpp"

#include "program.hpp"

#include <sockact/detail/accept_core.hpp>
#include <sockact/listen.hpp>
#include <sockact/notify.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <utility>

namespace sockact_run {

namespace {

constexpr auto accept_probe_every = std::chrono::milliseconds(1);
constexpr auto accept_probe_for = std::chrono::seconds(10);
// While something of PROGRAM is being ended: how often to look whether it is gone.
constexpr auto leftover_check_every = std::chrono::milliseconds(100);
// Stopping: how long children of ours that PROGRAM left behind may take to end
// by themselves before they are sent SIGTERM (at most --stop-timeout).
constexpr auto leftover_grace = std::chrono::seconds(3);
// The final SIGKILL round: how long to wait for the last processes to go.
constexpr auto final_kill_for = std::chrono::seconds(5);
constexpr std::size_t stderr_lines_shown = 12;  // all of a Node.js SyntaxError with its stack

void empty_handler(int) {}

clock_type::duration to_duration(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<clock_type::duration>(d);
}

void reset_connection(int fd) noexcept {
  const linger reset_on_close{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof reset_on_close);
}

}  // namespace

supervisor::supervisor(options o, std::string program_path, std::string child_path,
                       std::vector<held_socket> sockets, const std::string& adopt,
                       std::optional<file_watch> watch)
    : o_(std::move(o)),
      program_path_(std::move(program_path)),
      child_path_(std::move(child_path)),
      sockets_(std::move(sockets)),
      env_(o_, sockets_, notify_.path(), adopt),
      failures_(o_.start_limit),
      starts_(o_.trigger_limit),
      store_(o_.fd_store_max),
      watch_(std::move(watch)) {}

bool supervisor::failed(const char* what) {
  std::fprintf(stderr, "%s: %s: %s\n", self, what, errno_text(errno).c_str());
  fatal_ = exit_runtime;
  return false;
}

run* supervisor::find(pid_t pid) {
  const auto it = runs_.find(pid);
  return it == runs_.end() ? nullptr : &it->second;
}

// Without --accept: while no PROGRAM runs, or only ones that drain (they
// have closed their copies of the sockets).
bool supervisor::want_listeners(clock_type::time_point now) const {
  if (stopping_ || closing_ || now < paused_until_) return false;
  if (o_.accept) return runs_.size() < o_.max_connections;
  return std::all_of(runs_.begin(), runs_.end(), [](const auto& p) { return p.second.draining; });
}

bool supervisor::setup_signals() {
  // Blocked and read from a signalfd. A handler too: as PID 1, a signal left
  // at SIG_DFL would be dropped by the kernel.
  sigset_t set;
  sigemptyset(&set);
  for (const int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) {
    sigaddset(&set, s);
    struct sigaction sa {};
    sa.sa_handler = empty_handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(s, &sa, nullptr);
  }
  ::sigprocmask(SIG_BLOCK, &set, &old_mask_);
  ::signal(SIGPIPE, SIG_IGN);
  signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals_) return failed("signalfd");
  // Orphans of PROGRAM come to us (not to PID 1 of the host), are reaped,
  // and are ended with the rest of PROGRAM.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  for (const pid_t c : children_of_self()) inherited_children_.insert(c);
  return true;
}

int supervisor::loop() {
  if (!setup_signals()) return fatal_;
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    std::error_code ec;
    const sockact::fd_info info = sockact::describe_fd(sockets_[i].fd.get(), ec);
    std::fprintf(stderr, "%s: listening on %s (%s %s, name %s)\n", self, info.local_address.c_str(),
                 sockact::family_name(info.family).c_str(), sockact::type_name(info.type).c_str(),
                 sockets_[i].name.c_str());
  }
  if (store_.max() > 0)
    std::fprintf(stderr, "%s: fd store: up to %u fds (FDSTORE=1), passed to each start after the sockets\n",
                 self, store_.max());
  std::fprintf(stderr, "%s: NOTIFY_SOCKET=%s; PROGRAM %s starts on the first %s\n", self,
               notify_.path().c_str(), program_path_.c_str(), o_.datagram ? "datagram" : "connection");
  {
    // Our own manager (systemd, podman --sdnotify=container), if any: we are ready.
    std::error_code ec;
    sockact::notify(sockact::notify_state::ready, ec);
  }

  std::vector<pollfd> fds;
  std::vector<unsigned> relay_runs;
  while (fatal_ < 0 && !finished()) {
    fds.clear();
    relay_runs.clear();
    fds.push_back({signals_.get(), POLLIN, 0});
    fds.push_back({notify_.fd(), POLLIN, 0});
    fds.push_back({watch_ ? watch_->fd() : -1, POLLIN, 0});  // -1: poll(2) skips it
    const std::size_t first_stored = fds.size();
    store_.watch(fds);
    const std::size_t first_relay = fds.size();
    for (const auto& [number, relay] : relays_) {
      if (relay.closed()) continue;
      fds.push_back({relay.fd(), POLLIN, 0});
      relay_runs.push_back(number);
    }
    const std::size_t first_socket = fds.size();
    const clock_type::time_point now = clock_type::now();
    const bool listening = want_listeners(now);
    if (listening)
      for (const held_socket& s : sockets_) fds.push_back({s.fd.get(), POLLIN, 0});
    const clock_type::time_point next = next_deadline();
    int timeout = -1;
    if (next != clock_type::time_point::max())
      timeout = next <= now ? 0
                            : static_cast<int>(std::min<long long>(
                                  std::chrono::ceil<std::chrono::milliseconds>(next - now).count(), 60000));
    const int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      failed("poll");
      break;
    }
    const clock_type::time_point woken = clock_type::now();
    // The store first: what follows may change it, and then an fd number could name another fd.
    if (n > 0)
      for (const std::string& name : store_.drop_hung_up(&fds[first_stored], first_relay - first_stored))
        std::fprintf(stderr, "%s: fd store: an fd named \"%s\" hung up (POLLHUP/POLLERR): closed, %zu left\n",
                     self, name.c_str(), store_.size());
    if (n > 0 && (fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info;
      while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) on_signal(info);
    }
    if (n > 0 && (fds[1].revents & POLLIN) != 0) on_notify();
    if (n > 0 && (fds[2].revents & POLLIN) != 0) watch_->read_events(woken);
    if (n > 0) pump_relays(fds, first_relay, relay_runs);
    if (listening && n > 0) {
      for (std::size_t i = 0; i < sockets_.size() && fatal_ < 0; ++i) {
        if (!want_listeners(woken)) break;
        if ((fds[first_socket + i].revents & (POLLIN | POLLERR | POLLHUP)) != 0) activate(i, woken);
      }
    }
    check_timers(clock_type::now());
  }
  end_everything();
  notify_.remove();
  if (fatal_ >= 0) return fatal_;
  return closing_ ? closing_status_ : exit_status_;
}

void supervisor::on_signal(const signalfd_siginfo& info) {
  const int sig = static_cast<int>(info.ssi_signo);
  if (sig == SIGCHLD) return reap();
  if (sig == SIGUSR2 && !o_.accept) return request_restart("SIGUSR2");
  if (sig != SIGTERM && sig != SIGINT) {
    for (auto& [pid, r] : runs_)
      if (!r.draining) ::kill(pid, sig);  // a drain is not to be disturbed (SIGHUP would end it)
    return;
  }
  ++stop_requests_;
  stopping_ = true;
  for (auto& [pid, r] : runs_) {  // a replacement stopped now did not fail
    r.candidate = false;
    r.candidate_deadline = clock_type::time_point::max();
  }
  const int send = stop_requests_ == 1 ? sig : SIGKILL;
  for (auto& [target, deadline] : leftovers_) {
    if (send != SIGKILL) continue;
    ::kill(target, SIGKILL);
    deadline = clock_type::time_point::max();
  }
  if (runs_.empty()) {
    std::fprintf(stderr, "%s: %s with no PROGRAM running: exiting\n", self, signal_name(sig).c_str());
    return;
  }
  std::string then;
  if (stop_requests_ == 1)
    then = o_.stop_timeout ? "; SIGKILL after " + seconds_text(*o_.stop_timeout) +
                                 " s (--stop-timeout) or at a second signal"
                           : "; SIGKILL at a second signal";
  std::fprintf(stderr, "%s: %s: sending %s to %zu running PROGRAM(s) and their process groups%s\n", self,
               signal_name(sig).c_str(), signal_name(send).c_str(), runs_.size(), then.c_str());
  const clock_type::time_point now = clock_type::now();
  for (auto& [pid, r] : runs_) {
    if (r.stop_signal == 0) r.stop_signal = send;
    ::kill(-pid, send);
    if (send == SIGKILL) {
      r.kill_deadline = clock_type::time_point::max();
    } else if (o_.stop_timeout && r.kill_deadline == clock_type::time_point::max()) {
      r.kill_deadline = now + to_duration(*o_.stop_timeout);
      r.kill_reason = "--stop-timeout";
    }
  }
}

// Every child that ended, ours or inherited (PID 1, subreaper). All of them
// first: a group's leftovers are judged after its zombies are gone.
void supervisor::reap() {
  on_notify();  // STOPPING=1 was sent before the exit: take it into account first
  std::vector<std::pair<pid_t, int>> done;
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    inherited_children_.erase(pid);
    if (find(pid) != nullptr) done.emplace_back(pid, status);
  }
  for (const auto& [pid, status] : done)
    if (run* r = find(pid)) ended(*r, status);
}

void supervisor::ended(run& r, int status) {
  const clock_type::duration ran = clock_type::now() - r.started;
  std::vector<std::string> lines;
  if (const auto it = relays_.find(r.number); it != relays_.end()) {
    if (!it->second.closed()) it->second.pump();  // what it wrote just before it ended
    lines = it->second.last_lines(stderr_lines_shown);
    if (it->second.closed()) relays_.erase(it);
  }
  std::string why;
  int shell_status = 0;
  if (WIFEXITED(status)) {
    shell_status = WEXITSTATUS(status);
    if (shell_status == 0 && r.stopping && r.stop_signal == 0 && !r.watchdog_fired)
      why = "idle (exit 0 after STOPPING=1)";
    else
      why = "exit " + std::to_string(shell_status);
  } else if (WIFSIGNALED(status)) {
    shell_status = 128 + WTERMSIG(status);
    why = "signal " + signal_name(WTERMSIG(status));
  }
  if (r.watchdog_fired)
    why += ", watchdog timeout";
  else if (r.stop_signal != 0)
    why += " after " + signal_name(r.stop_signal) + " from sockact-run";
  if (r.replaced_by != 0) why += " (replaced by activation " + std::to_string(r.replaced_by) + ")";
  std::string cold = r.replacement ? "started beside the running one: ready " : "cold start: ready ";
  cold += r.ready ? "+" + ms_text(*r.ready) : "-";
  if (!o_.accept && !r.replacement)
    cold += ", accept " + (r.accepted ? "+" + ms_text(*r.accepted) : std::string("-"));
  if (r.pings > 0) cold += "; " + std::to_string(r.pings) + " watchdog pings";
  std::fprintf(stderr, "%s: activation %u: %s pid %ld, woken by %s; %s; ran %.3f s; stopped: %s\n", self,
               r.number, r.started_at.c_str(), static_cast<long>(r.pid), r.woken_by.c_str(), cold.c_str(),
               seconds(ran), why.c_str());
  if (r.candidate)
    replacement_failed(r, why, lines);  // the one it was to replace serves on
  else
    count_outcome(r, why, std::move(lines));
  if (stopping_) exit_status_ = shell_status;  // sockact-run's own status: see --help
  // What is left of its process group goes too, as systemd's
  // KillMode=control-group ends the rest of a service's cgroup.
  if (alive(-r.pid)) {
    const int sig = killing_all_ || r.stop_signal == SIGKILL || stop_requests_ > 1 ? SIGKILL : SIGTERM;
    std::fprintf(stderr, "%s: pid %ld ended; its process group still has processes: sending %s%s\n", self,
                 static_cast<long>(r.pid), signal_name(sig).c_str(),
                 sig != SIGKILL && o_.stop_timeout
                     ? (" (SIGKILL in " + seconds_text(*o_.stop_timeout) + " s, --stop-timeout)").c_str()
                     : "");
    end_leftovers(-r.pid, sig);
  }
  runs_.erase(r.pid);
}

// The start limit counts failed starts in a row; see --help.
void supervisor::count_outcome(const run& r, const std::string& why, std::vector<std::string> stderr_lines) {
  if (r.stop_signal != 0 || killing_all_) return;  // stopped by us: says nothing about PROGRAM
  // --accept: one handler, one connection. Its status is that connection's
  // outcome, which the client can choose (garbage, or connect and close), so
  // it is logged above and not counted: five such clients would otherwise
  // stop the service. systemd's Accept=yes instances are the same. A PROGRAM
  // that cannot be executed still stops it at once (start()).
  if (o_.accept) return;
  bool waiting = false;  // the connection (datagram) that woke it, or a later one, still waits
  for (const held_socket& s : sockets_) waiting = waiting || (s.fd && readable(s.fd.get()));
  const bool failed_start =
      !r.accepted && !r.replacement && waiting;  // a replacement was judged by its readiness
  const std::string how = " without taking the connection that woke it";
  if (!failed_start) {
    failures_.clear();
    return;
  }
  failures_.add(r.started);
  char ran[32];
  std::snprintf(ran, sizeof ran, "%.3f", seconds(clock_type::now() - r.started));
  last_failure_ = "pid " + std::to_string(r.pid) + ": " + why + " after " + ran + " s" + how;
  last_failure_pid_ = r.pid;
  last_failure_lines_ = std::move(stderr_lines);
}

void supervisor::end_leftovers(pid_t target, int sig) {
  ::kill(target, sig);
  clock_type::time_point deadline = clock_type::time_point::max();
  if (sig != SIGKILL && o_.stop_timeout) deadline = clock_type::now() + to_duration(*o_.stop_timeout);
  leftovers_[target] = deadline;
}

// The run a notify message is from: the sender, or a process in its process
// group (a helper of PROGRAM), or else the one PROGRAM serving.
run* supervisor::sender(pid_t pid) {
  if (run* r = find(pid)) return r;
  if (const pid_t group = ::getpgid(pid); group > 0)
    if (run* r = find(group)) return r;
  if (o_.accept) return nullptr;
  run* only = nullptr;
  for (auto& [p, r] : runs_) {
    if (r.draining) continue;
    if (only != nullptr) return nullptr;
    only = &r;
  }
  return only;
}

void supervisor::on_notify() {
  notify_socket::message m;
  while (notify_.receive(m)) {
    run* r = sender(m.pid);
    const clock_type::time_point now = clock_type::now();
    bool store = false, remove = false, poll = true, barrier = false;
    std::optional<std::string> fd_name;
    for (const std::string& line : split(m.text, '\n')) {
      if (line.empty()) continue;
      bool show = true;
      store = store || line == "FDSTORE=1";
      remove = remove || line == "FDSTOREREMOVE=1";
      poll = poll && line != "FDPOLL=0";
      if (line.rfind("FDNAME=", 0) == 0) fd_name = line.substr(7);
      if (line == "BARRIER=1") {
        barrier = true;
        show = false;  // sd_notify_barrier(): the fd it sends is closed below, which answers it
      }
      if (r != nullptr) {
        if (line == "READY=1" && !r->ready) {
          r->ready = now - r->woken;
          ready_seen_ = true;
        }
        if (line == "STOPPING=1") r->stopping = true;
        if (line == "WATCHDOG=1") {
          show = r->pings++ == 0;
          if (o_.watchdog.count() > 0 && !r->watchdog_fired)
            r->watchdog_deadline = now + to_duration(o_.watchdog);
        }
      }
      if (show)
        std::fprintf(
            stderr, "%s: pid %ld: %s%s%s\n", self, static_cast<long>(m.pid), line.c_str(),
            line == "READY=1" && r != nullptr && r->ready ? (" (+" + ms_text(*r->ready) + ")").c_str() : "",
            line == "WATCHDOG=1" ? " (further pings are counted, not shown)" : "");
    }
    on_fd_store(m, store, remove, poll, barrier, fd_name);
    if (r != nullptr && r->candidate && r->ready) replacement_ready(*r, "READY=1 +" + ms_text(*r->ready));
  }
}

// FDSTORE=1 and FDSTOREREMOVE=1 as systemd's service_notify_message() takes
// them: a removal wins; FDNAME= is needed to remove, optional to store
// ("stored"), and an invalid one is ignored. Other fds are closed.
void supervisor::on_fd_store(notify_socket::message& m, bool store, bool remove, bool poll, bool barrier,
                             const std::optional<std::string>& name) {
  const long pid = static_cast<long>(m.pid);
  if (m.truncated)
    std::fprintf(stderr, "%s: pid %ld: more fds than one message carries: the kernel closed the rest\n", self,
                 pid);
  if (remove) {
    if (!name || !fd_name_valid(*name)) {
      std::fprintf(stderr, "%s: pid %ld: FDSTOREREMOVE=1 without a valid FDNAME=: ignored\n", self, pid);
    } else {
      const unsigned removed = store_.remove(*name);
      std::fprintf(stderr, "%s: pid %ld: fd store: %u fd(s) named \"%s\" removed and closed, %zu left\n",
                   self, pid, removed, name->c_str(), store_.size());
    }
  } else if (store && !m.fds.empty()) {
    std::string stored_name = "stored";
    if (name && fd_name_valid(*name))
      stored_name = *name;
    else if (name)
      std::fprintf(stderr,
                   "%s: pid %ld: FDNAME= is not a valid name (printable ASCII, no ':', 255 at most): "
                   "ignored\n",
                   self, pid);
    if (store_.max() == 0) {
      std::fprintf(
          stderr,
          "%s: pid %ld: FDSTORE=1: %zu fd(s) closed: the fd store is off (--fd-store-max 0, the default, "
          "as systemd's FileDescriptorStoreMax=0)\n",
          self, pid, m.fds.size());
      return;
    }
    const fd_store::added a = store_.add(std::move(m.fds), stored_name, poll);
    std::string notes;
    if (a.duplicates > 0) notes += "; " + std::to_string(a.duplicates) + " already there";
    if (a.over > 0) notes += "; " + std::to_string(a.over) + " closed: the store is full (--fd-store-max)";
    std::fprintf(stderr, "%s: pid %ld: fd store: %u fd(s) stored as \"%s\", %zu of %u%s\n", self, pid,
                 a.stored, stored_name.c_str(), store_.size(), store_.max(), notes.c_str());
    return;
  }
  if (!m.fds.empty() && !barrier)
    std::fprintf(stderr, "%s: pid %ld: %zu fd(s) received %s: closed\n", self, pid, m.fds.size(),
                 remove ? "with FDSTOREREMOVE=1" : "without FDSTORE=1");
}

void supervisor::pump_relays(const std::vector<pollfd>& fds, std::size_t first,
                             const std::vector<unsigned>& numbers) {
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    if (fds[first + i].revents == 0) continue;
    const auto it = relays_.find(numbers[i]);
    if (it == relays_.end() || it->second.closed()) continue;
    const bool running = std::any_of(runs_.begin(), runs_.end(),
                                     [&](const auto& run) { return run.second.number == numbers[i]; });
    if (!it->second.pump() && !running) relays_.erase(it);  // else ended() still reads it
  }
}

// Socket `index` is readable: start PROGRAM for it.
void supervisor::activate(std::size_t index, clock_type::time_point woken) {
  held_socket& s = sockets_[index];
  const std::string what = "fd " + std::to_string(3 + index) + " \"" + s.name + "\" (" + s.address + ")";
  if (!o_.accept) {
    std::string woken_by = what;
    if (o_.datagram) {  // the sender of the waiting datagram, without taking it
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      char byte = 0;
      if (::recvfrom(s.fd.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer),
                     &len) >= 0 &&
          len > sizeof(sa_family_t))
        woken_by += ", peer " + sockact::address_to_string(reinterpret_cast<sockaddr*>(&peer), len);
    }
    if (!may_start(woken_by)) return;
    spawn_pipes pipes;
    if (!pipes.open()) return back_off("pipe2", errno);
    start(woken_by, woken, -1, std::move(pipes));
    return;
  }
  // --accept: the waiting connections (a burst of them, as the library's
  // drivers take), each to a PROGRAM of its own, while fewer than
  // --max-connections run; the rest wait in the queue. The accept path is
  // the library's: what each accept() error means, and the back-off after
  // EMFILE and the like (the socket stays readable: polling it again at once
  // would spin).
  sockact::detail::accept_core accepts;
  const sockact::detail::accept_outcome r = accepts.burst(
      [&]() -> std::optional<sockact::accept_result> {
        if (fatal_ >= 0 || !want_listeners(clock_type::now()) || !may_start(what)) return std::nullopt;
        spawn_pipes pipes;  // before the connection: without fds it stays queued
        if (!pipes.open()) {
          back_off("pipe2", errno);
          return std::nullopt;
        }
        sockact::accept_result a =
            sockact::accept_connection(s.fd.get(), SOCK_CLOEXEC);  // PROGRAM's: blocking
        if (a.status == sockact::accept_status::accepted) {
          serve_connection(std::move(a.fd), what, woken, std::move(pipes));
          woken = clock_type::now();
        }
        return std::optional<sockact::accept_result>(std::move(a));
      },
      s.name, [](const std::string&) {});  // back_off() says it, once per stretch
  if (r.next == sockact::detail::accept_next::back_off) back_off("accept", r.error.value());
}

// --accept: PROGRAM for one connection, with REMOTE_ADDR and REMOTE_PORT.
void supervisor::serve_connection(sockact::unique_fd c, const std::string& what, clock_type::time_point woken,
                                  spawn_pipes pipes) {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(c.get(), reinterpret_cast<sockaddr*>(&peer), &len) < 0) len = 0;
  const std::string peer_text = sockact::address_to_string(reinterpret_cast<sockaddr*>(&peer), len);
  std::string addr, port;
  char buf[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(peer);
    addr = ::inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
    port = std::to_string(ntohs(in.sin_port));
  } else if (peer.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
    addr = ::inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
    port = std::to_string(ntohs(in6.sin6_port));
  }
  env_.set_remote(addr, port);
  if (!start(what + (peer_text.empty() ? "" : ", peer " + peer_text), woken, c.get(), std::move(pipes)))
    reset_connection(c.get());  // could not fork: its client learns at once
}

// The start and trigger limits, before a start (and, with --accept, before
// its connection is taken). False when a limit was hit: sockact-run gives up.
bool supervisor::may_start(const std::string& woken_by) {
  const clock_type::time_point now = clock_type::now();
  if (failures_.full(now)) {
    give_up(exit_start_limit, "start limit hit: PROGRAM was started " + std::to_string(failures_.count()) +
                                  " times within " + seconds_text(o_.start_limit.interval) +
                                  " s (--start-limit=" + limit_text(o_.start_limit) +
                                  ") and failed each time (the last, " + last_failure_ + "), and " +
                                  woken_by + " is waiting again. Not starting it again.");
    return false;
  }
  if (starts_.full(now)) {
    give_up(exit_start_limit, "trigger limit hit: PROGRAM was started " + std::to_string(starts_.count()) +
                                  " times within " + seconds_text(o_.trigger_limit.interval) +
                                  " s (--trigger-limit=" + limit_text(o_.trigger_limit) + "), and " +
                                  woken_by +
                                  " is waiting again; PROGRAM does not take its connections, or exits at "
                                  "once. Not starting it again.");
    return false;
  }
  return true;
}

// fork() and exec PROGRAM. connection >= 0: --accept's connection, else the
// held sockets. False when it did not start.
bool supervisor::start(const std::string& woken_by, clock_type::time_point woken, int connection,
                       spawn_pipes pipes, bool replacement) {
  spawn_request request;
  request.path = &program_path_;
  request.argv = o_.program.data();
  request.env = &env_;
  request.mask = &old_mask_;
  request.inetd = o_.inetd;
  if (connection >= 0) {
    request.fds.push_back(connection);
  } else {
    // The sockets, then the fd store's fds (as systemd's service_collect_fds()).
    std::string names;
    for (const held_socket& s : sockets_) {
      request.fds.push_back(s.fd.get());
      names += (names.empty() ? "" : ":") + s.name;
    }
    for (const fd_store::entry& e : store_.entries()) {
      request.fds.push_back(e.fd.get());
      names += ":" + e.name;
    }
    env_.set_listen(request.fds.size(), names);
  }
  const std::string started_at = wall_time();
  const clock_type::time_point now = clock_type::now();
  spawned child = spawn(request, std::move(pipes));
  if (child.pid < 0) {
    const int err = child.fork_error;
    if (err == EAGAIN || err == ENOMEM) {
      back_off("fork", err);
      return false;
    }
    errno = err;
    return failed("fork");
  }
  if (paused_said_) {
    std::fprintf(stderr, "%s: starting PROGRAMs again\n", self);
    paused_said_ = false;
  }
  if (!replacement) starts_.add(now);  // the trigger limit counts what the sockets start
  run r;
  r.number = ++activations_;
  r.pid = child.pid;
  r.woken_by = woken_by;
  r.started_at = started_at;
  r.woken = woken;
  r.started = now;
  if (o_.watchdog.count() > 0) r.watchdog_deadline = now + to_duration(o_.watchdog);
  if (replacement) {
    r.replacement = r.candidate = true;
    r.expects_ready = ready_seen_;
    r.candidate_deadline = now + to_duration(r.expects_ready ? replacement_ready_timeout : replacement_grace);
  }
  runs_[child.pid] = r;
  relays_.emplace(r.number, stderr_relay(std::move(child.stderr_read)));
  if (child.exec_error != 0) {
    // It is exiting: reaped here, so that it is not counted as running.
    int status = 0;
    pid_t reaped = 0;
    do reaped = ::waitpid(child.pid, &status, 0);
    while (reaped < 0 && errno == EINTR);
    const std::string why = "cannot run " + exec_failure(program_path_, child.exec_error, child_path_);
    runs_.at(child.pid).candidate = false;  // said below, not as a start that ended before it was ready
    if (reaped == child.pid) ended(runs_.at(child.pid), status);
    if (replacement) {  // a build on its way: the old one serves on
      std::fprintf(stderr, "%s: restart (%s) failed: %s; %s serves on\n", self, woken_by.c_str(), why.c_str(),
                   serving_text().c_str());
      return false;
    }
    give_up(child.exec_error == ENOENT ? exit_not_found : exit_cannot_exec, why);
    return false;
  }
  return true;
}

// Out of fds or processes: the listening sockets rest for a while instead
// of being polled (and found readable) again at once.
void supervisor::back_off(const char* what, int err) {
  paused_until_ = clock_type::now() + to_duration(resource_back_off);
  if (paused_said_) return;
  paused_said_ = true;
  std::fprintf(
      stderr,
      "%s: %s: %s; the listening sockets rest %lld ms at a time until it works again (%zu PROGRAM(s) "
      "running)\n",
      self, what, errno_text(err).c_str(), static_cast<long long>(resource_back_off.count()), runs_.size());
}

// A limit was hit or exec failed: start nothing more; the clients waiting now
// are reset rather than left to time out; PROGRAMs still running finish.
void supervisor::give_up(int status, const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", self, why.c_str());
  if (status == exit_start_limit && last_failure_pid_ != 0) {
    if (last_failure_lines_.empty())
      std::fprintf(stderr, "%s: pid %ld wrote nothing to stderr\n", self,
                   static_cast<long>(last_failure_pid_));
    else
      std::fprintf(stderr, "%s: the last lines pid %ld wrote to stderr:\n", self,
                   static_cast<long>(last_failure_pid_));
    for (const std::string& line : last_failure_lines_)
      std::fprintf(stderr, "%s:   | %s\n", self, line.c_str());
  }
  unsigned reset = 0;
  for (held_socket& s : sockets_) reset += close_and_reset(s);
  std::string after;
  if (!runs_.empty())
    after = "once the " + std::to_string(runs_.size()) + " PROGRAM(s) still running have ended, ";
  std::fprintf(stderr,
               "%s: closed the listening sockets (%u waiting connection(s) reset); %sexiting with %d\n", self,
               reset, after.c_str(), status);
  closing_ = true;
  closing_status_ = status;
}

// Stopping or closing, and nothing of PROGRAM runs: done? Children of ours
// that are left (orphans, daemons that left PROGRAM's process group) are
// ended first.
bool supervisor::finished() {
  if (!stopping_ && !closing_) return false;
  if (!runs_.empty() || !leftovers_.empty()) return false;
  std::vector<pid_t> left;
  for (const pid_t c : children_of_self()) {
    if (inherited_children_.count(c) != 0) continue;
    int status = 0;
    if (::waitpid(c, &status, WNOHANG) != 0) continue;  // a zombie, now reaped
    left.push_back(c);
  }
  if (left.empty()) return true;
  // A moment to end by themselves first: podman run's conmon removes the
  // container (--rm) right after PROGRAM's end; ended at once, it leaves a
  // stopped container behind. A second stop signal does not wait.
  const clock_type::time_point now = clock_type::now();
  if (stop_requests_ <= 1) {
    if (leftover_grace_until_ == clock_type::time_point{}) {
      clock_type::duration grace = leftover_grace;
      if (o_.stop_timeout) grace = std::min(grace, to_duration(*o_.stop_timeout));
      leftover_grace_until_ = now + grace;
    }
    if (now < leftover_grace_until_) return false;
  }
  const int sig = stop_requests_ > 1 ? SIGKILL : SIGTERM;
  for (const pid_t c : left) {
    std::fprintf(stderr, "%s: pid %ld, left behind by PROGRAM, is still running: sending %s\n", self,
                 static_cast<long>(c), signal_name(sig).c_str());
    end_leftovers(::getpgid(c) == c ? -c : c, sig);
  }
  return false;
}

// On the way out: nothing of PROGRAM may outlive sockact-run (it would hold
// the listening sockets). Normally nothing is left by now.
void supervisor::end_everything() {
  killing_all_ = true;
  for (const auto& [pid, r] : runs_) ::kill(-pid, SIGKILL);
  for (const auto& [target, deadline] : leftovers_) ::kill(target, SIGKILL);
  const clock_type::time_point until = clock_type::now() + final_kill_for;
  for (;;) {
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0)
      if (run* r = find(pid)) ended(*r, status);
    if (pid < 0 || clock_type::now() >= until) break;  // ECHILD: no child left
    bool any = false;
    for (const pid_t c : children_of_self()) {
      if (inherited_children_.count(c) != 0) continue;
      if (::getpgid(c) == c) ::kill(-c, SIGKILL);
      ::kill(c, SIGKILL);
      any = true;
    }
    if (!any) break;
    ::usleep(10000);
  }
  for (auto& [number, relay] : relays_)
    if (!relay.closed()) relay.pump();
  relays_.clear();
}

clock_type::time_point supervisor::next_deadline() const {
  const clock_type::time_point now = clock_type::now();
  clock_type::time_point t = clock_type::time_point::max();
  for (const auto& [pid, r] : runs_) {
    t = std::min({t, r.watchdog_deadline, r.kill_deadline, r.candidate_deadline});
    if (!o_.accept && !r.accepted && !r.replacement && now - r.started < accept_probe_for)
      t = std::min(t, now + accept_probe_every);
  }
  if (watch_) t = std::min(t, watch_->deadline());
  if (!leftovers_.empty() || ((stopping_ || closing_) && runs_.empty()))
    t = std::min(t, now + leftover_check_every);
  if (paused_until_ > now) t = std::min(t, paused_until_);
  return t;
}

void supervisor::check_timers(clock_type::time_point now) {
  for (auto& [pid, r] : runs_) {
    if (!o_.accept && !r.accepted && !r.replacement && now - r.started < accept_probe_for) {
      bool waiting = false;  // is any socket's queue still non-empty?
      for (const held_socket& s : sockets_) waiting = waiting || (s.fd && readable(s.fd.get()));
      if (!waiting) r.accepted = now - r.woken;
    }
    if (now >= r.watchdog_deadline) {
      std::fprintf(
          stderr, "%s: pid %ld: no WATCHDOG=1 for %s s: sending SIGABRT (SIGKILL in %lld s)\n", self,
          static_cast<long>(pid), seconds_text(o_.watchdog).c_str(),
          static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(kill_after_abort).count()));
      r.watchdog_fired = true;
      r.watchdog_deadline = clock_type::time_point::max();
      r.kill_deadline = now + to_duration(kill_after_abort);
      r.kill_reason = "SIGABRT";
      ::kill(pid, SIGABRT);
    }
    if (now >= r.kill_deadline) {
      if (r.watchdog_fired)
        std::fprintf(stderr, "%s: pid %ld: still running after SIGABRT: sending SIGKILL\n", self,
                     static_cast<long>(pid));
      else
        std::fprintf(stderr,
                     "%s: pid %ld: still running %s s after %s (%s): sending SIGKILL to its process group\n",
                     self, static_cast<long>(pid),
                     seconds_text(o_.stop_timeout.value_or(std::chrono::milliseconds{0})).c_str(),
                     signal_name(r.stop_signal).c_str(), r.kill_reason);
      r.kill_deadline = clock_type::time_point::max();
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
  }
  for (auto it = leftovers_.begin(); it != leftovers_.end();) {
    if (!alive(it->first)) {
      it = leftovers_.erase(it);
      continue;
    }
    if (now >= it->second) {
      std::fprintf(stderr, "%s: %s %ld still there %s s after SIGTERM (--stop-timeout): sending SIGKILL\n",
                   self, it->first < 0 ? "process group" : "pid",
                   static_cast<long>(it->first < 0 ? -it->first : it->first),
                   seconds_text(o_.stop_timeout.value_or(std::chrono::milliseconds{0})).c_str());
      ::kill(it->first, SIGKILL);
      it->second = clock_type::time_point::max();
    }
    ++it;
  }
  check_replacements(now);
  if (watch_)
    if (const std::string what = watch_->settled(now); !what.empty())
      request_restart("a change of " + what + " (--watch)");
}

}  // namespace sockact_run
