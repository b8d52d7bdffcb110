// sockact-run: restarts beside the running PROGRAM (--watch, SIGUSR2). The
// new one starts on the same sockets at once; both accept until it is ready;
// then the old one gets SIGTERM, closes its copy of the sockets and finishes
// what it received. A new one that fails leaves the old one serving.
// SPDX-License-Identifier: MIT

#include "supervisor.hpp"

#include <signal.h>
#include <cstdio>
#include <utility>

namespace sockact_run {

namespace {

constexpr std::size_t stderr_lines_shown = 12;

clock_type::duration to_duration(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<clock_type::duration>(d);
}

}  // namespace

std::string supervisor::serving_text() const {
  std::string out;
  for (const auto& [pid, r] : runs_)
    if (serving(r))
      out += (out.empty() ? "" : ", ") +
             ("pid " + std::to_string(pid) + " (activation " + std::to_string(r.number) + ")");
  return out;
}

void supervisor::request_restart(const std::string& why) {
  if (stopping_ || closing_ || killing_all_ || fatal_ >= 0) {
    std::fprintf(stderr, "%s: %s: stopping, no restart\n", self, why.c_str());
    return;
  }
  for (auto& [pid, r] : runs_) {
    if (!r.candidate) continue;
    // A newer build replaces one still starting: waiting for it would hold
    // the next fix up to --stop-timeout when it hangs before it is ready.
    // What it has accepted meanwhile it finishes (SIGTERM is a drain).
    std::fprintf(stderr,
                 "%s: %s: pid %ld (activation %u) is still starting beside the running one: SIGTERM to it, "
                 "and the new one starts now\n",
                 self, why.c_str(), static_cast<long>(pid), r.number);
    drain(r, activations_ + 1);
    break;
  }
  if (serving_text().empty()) {
    std::fprintf(
        stderr, "%s: %s: no PROGRAM is serving; the next connection starts it, from the file as it is then\n",
        self, why.c_str());
    return;
  }
  start_replacement(why);
}

void supervisor::start_replacement(const std::string& why) {
  const std::string old = serving_text();
  spawn_pipes pipes;
  if (!pipes.open()) {
    std::fprintf(stderr, "%s: restart (%s) failed: pipe2: %s; %s serves on\n", self, why.c_str(),
                 errno_text(errno).c_str(), old.c_str());
    return;
  }
  const unsigned number = activations_ + 1;
  if (!start(why, clock_type::now(), -1, std::move(pipes), true)) return;  // start() said why
  for (const auto& [pid, r] : runs_) {
    if (r.number != number) continue;
    std::fprintf(stderr,
                 "%s: restart (%s): pid %ld (activation %u) started beside %s, which gets SIGTERM once it is "
                 "ready (%s)\n",
                 self, why.c_str(), static_cast<long>(pid), number, old.c_str(),
                 r.expects_ready ? "READY=1"
                                 : ("alive for " + seconds_text(replacement_grace) +
                                    " s: PROGRAM has sent no READY=1 so far")
                                       .c_str());
  }
}

void supervisor::drain(run& r, unsigned replaced_by) {
  r.draining = true;
  r.candidate = false;
  r.candidate_deadline = clock_type::time_point::max();
  r.replaced_by = replaced_by;
  if (r.stop_signal == 0) r.stop_signal = SIGTERM;
  ::kill(-r.pid, SIGTERM);
  if (o_.stop_timeout && r.kill_deadline == clock_type::time_point::max()) {
    r.kill_deadline = clock_type::now() + to_duration(*o_.stop_timeout);
    r.kill_reason = "--stop-timeout";
  }
}

void supervisor::replacement_ready(run& r, const std::string& how) {
  r.candidate = false;
  r.candidate_deadline = clock_type::time_point::max();
  std::string replaced;
  for (auto& [pid, o] : runs_) {
    if (&o == &r || !serving(o)) continue;
    replaced += (replaced.empty() ? "" : ", ") + ("pid " + std::to_string(pid));
    drain(o, r.number);
  }
  std::fprintf(
      stderr, "%s: restart: pid %ld (activation %u) is ready (%s)%s\n", self, static_cast<long>(r.pid),
      r.number, how.c_str(),
      replaced.empty()
          ? "; nothing else was serving"
          : ("; SIGTERM to " + replaced + ": it stops accepting and finishes what it received").c_str());
}

void supervisor::replacement_failed(const run& r, const std::string& why,
                                    const std::vector<std::string>& lines) {
  const std::string old = serving_text();
  std::fprintf(stderr,
               "%s: restart failed: the new PROGRAM (pid %ld, activation %u) ended before it was ready: %s "
               "after %.3f s; %s\n",
               self, static_cast<long>(r.pid), r.number, why.c_str(), seconds(clock_type::now() - r.started),
               old.empty() ? "no PROGRAM is serving: the next connection starts it again"
                           : (old + " serves on").c_str());
  if (lines.empty()) {
    std::fprintf(stderr, "%s: pid %ld wrote nothing to stderr\n", self, static_cast<long>(r.pid));
    return;
  }
  std::fprintf(stderr, "%s: the last lines pid %ld wrote to stderr:\n", self, static_cast<long>(r.pid));
  for (std::size_t i = lines.size() > stderr_lines_shown ? lines.size() - stderr_lines_shown : 0;
       i < lines.size(); ++i)
    std::fprintf(stderr, "%s:   | %s\n", self, lines[i].c_str());
}

void supervisor::check_replacements(clock_type::time_point now) {
  std::vector<pid_t> due;
  for (const auto& [pid, r] : runs_)
    if (r.candidate && now >= r.candidate_deadline) due.push_back(pid);
  for (const pid_t pid : due) {
    run* r = find(pid);
    if (r == nullptr || !r->candidate) continue;
    if (!r->expects_ready) {
      replacement_ready(*r, "alive for " + seconds_text(replacement_grace) + " s");
      continue;
    }
    std::fprintf(
        stderr,
        "%s: restart failed: pid %ld (activation %u) sent no READY=1 within %s s: sending it SIGTERM; "
        "%s serves on\n",
        self, static_cast<long>(pid), r->number, seconds_text(replacement_ready_timeout).c_str(),
        serving_text().c_str());
    drain(*r, 0);
  }
}

}  // namespace sockact_run
