// sockact-run: the command line and --help.
// SPDX-License-Identifier: MIT

#include "options.hpp"

#include "messages.hpp"

#include <sockact/detail/parse.hpp>
#include <sockact/idle.hpp>
#include <sockact/version.hpp>

#include <cstdint>
#include <cstdio>

namespace sockact_run {

namespace {

const char* const help_text =
    R"help(usage: sockact-run [OPTIONS] -- PROGRAM [ARGS...]

Holds listening sockets and starts PROGRAM on the first connection, as a
systemd .socket unit does. PROGRAM gets the sockets as fds 3, 4, ... with
LISTEN_PID (its own pid), LISTEN_FDS and LISTEN_FDNAMES, a NOTIFY_SOCKET of
sockact-run's own, and the rest of sockact-run's environment. When PROGRAM
exits (for example when idle), sockact-run keeps the sockets and starts it
again on the next connection; connections that arrive meanwhile wait in the
kernel's queue.

options:
  -l, --listen ADDR      listen on ADDR (repeatable): IPv4:PORT, [IPv6]:PORT,
                         PORT (0.0.0.0:PORT), /path or ./path (unix socket),
                         @name (abstract unix socket)
      --fdname NAME[:NAME...]
                         LISTEN_FDNAMES, one name per --listen, in order
                         (repeatable; missing names are "unknown")
  -E, --setenv NAME[=VALUE]
                         set NAME for PROGRAM; without =VALUE, NAME is passed
                         from this environment (it is anyway: accepted for
                         systemd-socket-activate compatibility)
  -a, --accept           one PROGRAM per connection (Accept=yes, inetd): the
                         connection is fd 3, LISTEN_FDNAMES=connection,
                         REMOTE_ADDR/REMOTE_PORT are set
      --inetd            as --accept, but the connection is stdin and stdout
                         and no LISTEN_* variables are set
      --max-connections N
                         with --accept: at most N PROGRAMs at once (default
                         64, systemd's MaxConnections=); further connections
                         wait in the listening socket's queue
  -d, --datagram         datagram sockets (UDP, unix datagram) instead of
                         stream ones; PROGRAM starts when one is readable
      --start-limit BURST/SECONDS
                         stop when BURST starts in a row failed within SECONDS
                         (default 5/10, systemd's StartLimitBurst=/
                         StartLimitIntervalSec=); 0 turns it off. A start
                         failed when PROGRAM ended by itself without taking
                         the connection that woke it, whatever its status.
                         Not with --accept: a handler's status is its one
                         connection's, which a client can choose; it is
                         logged. A start that did not fail resets the count.
      --trigger-limit BURST/SECONDS
                         stop when PROGRAM would start more than BURST times
                         within SECONDS, failed or not (default 20/2, systemd's
                         TriggerLimitBurst=/TriggerLimitIntervalSec=; off with
                         --accept, where each start takes its own connection
                         and --max-connections bounds them); 0 turns it off
      --stop-timeout SECONDS
                         at a stop, how long PROGRAM's process group has after
                         SIGTERM before SIGKILL (default 90, systemd's
                         TimeoutStopSec=); 0 or "infinity": no SIGKILL
      --watchdog SECONDS set WATCHDOG_USEC and WATCHDOG_PID; when PROGRAM sends
                         no WATCHDOG=1 for that long, send it SIGABRT, and
                         SIGKILL 5 s later (systemd's WatchdogSec=)
      --watch            when the PROGRAM file changes (rebuilt, replaced,
                         touched), start it anew beside the running one and
                         let that one drain (see "restarts" below)
      --watch=PATH       the same for PATH, a file or a folder (its files, not
                         its subfolders); repeatable; with --watch as well, both
      --fd-store-max N   keep up to N fds that PROGRAM sends with FDSTORE=1 and
                         pass them to each later start after the sockets
                         (default 0: no fd store, systemd's default for
                         FileDescriptorStoreMax=); see "fd store" below
      --adopt[=PATH]     prepend the LD_PRELOAD library libsockact-adopt.so to
                         LD_PRELOAD (default: next to the sockact-run
                         executable, else in its ../lib)
  -h, --help             this text
      --version          the version

output (stderr): PROGRAM's stderr passes through sockact-run (a pipe; its
last lines are kept for the start-limit message); each notify message PROGRAM
sends (READY=1, STOPPING=1, STATUS=..., the first WATCHDOG=1 of each run); and
one line per activation when it ends:
  sockact-run: activation N: TIME pid P, woken by fd F "NAME" (ADDRESS)[, peer
  PEER]; cold start: ready +X ms, accept +Y ms; ran Z s; stopped: REASON
  - woken by: the socket that became readable first (the peer is known in
    --accept mode and for datagrams);
  - cold start: from that readable event to READY=1, and to the moment the
    socket's queue was first seen empty (PROGRAM accepted), probed every 1 ms;
  - stopped: "idle (exit 0 after STOPPING=1)" when PROGRAM sent STOPPING=1
    and exited with 0 without being told to stop; else "exit N", "signal
    NAME", "... after SIGTERM from sockact-run", "..., watchdog timeout",
    and "(replaced by activation N)" after a restart.
restarts add "restart (WHY): pid P (activation N) started beside ...", then
"restart: pid P ... is ready ...; SIGTERM to pid O", or "restart failed: ..."
with the new one's last stderr lines.

limits: past the start or trigger limit, sockact-run starts nothing more,
resets the connections waiting in the queue (so that clients fail at once
rather than time out), closes its listening sockets, says why with PROGRAM's
last stderr lines, lets PROGRAMs still running (--accept) finish, and exits
with 4. Out of fds or processes, it leaves the listening sockets alone for
100 ms at a time (the connections wait in the queue) rather than spin.

processes: each PROGRAM runs in a process group of its own, with
PR_SET_PDEATHSIG=SIGKILL (if sockact-run is killed, PROGRAM is too; its own
children are not). When PROGRAM ends, what is left of its process group gets
SIGTERM, and SIGKILL after --stop-timeout.

restarts (--watch, SIGUSR2): sockact-run starts PROGRAM anew on the same
sockets while the running one serves on; both accept until the new one is
ready: READY=1, or, for a PROGRAM that has never sent READY=1, 1 s alive.
Then the old one's process group gets SIGTERM: it stops accepting and
finishes what it received (SIGKILL after --stop-timeout). A new one that ends
before it is ready, or sends no READY=1 within 90 s, leaves the old one
serving, and the log says why, with its last stderr lines. A change counts
once the watched files have been quiet for 200 ms (2 s after a write without
a close); each file's folder is watched, so a file replaced by a rename is
seen. A change while no PROGRAM runs waits for the next connection, which
starts the new file anyway. Not with --accept or --inetd, where each
connection starts PROGRAM anew (there SIGUSR2 is forwarded).

fd store (--fd-store-max N), as systemd's: FDSTORE=1 with fds (SCM_RIGHTS)
stores them under FDNAME= ("stored" without one); FDSTOREREMOVE=1 with
FDNAME= closes the stored fds of that name; an fd already stored is not
stored twice; beyond N, fds are closed; a stored fd that reports POLLHUP or
POLLERR is closed (unless sent with FDPOLL=0). Each start gets them after the
sockets, in the order stored, counted in LISTEN_FDS and named in
LISTEN_FDNAMES. The store lasts as long as sockact-run, across idle exits and
restarts. Fds sent without FDSTORE=1 are closed. Not with --accept.

signals: SIGTERM and SIGINT go to each PROGRAM's process group, and SIGKILL
follows after --stop-timeout; a second SIGTERM or SIGINT sends SIGKILL at
once. Then sockact-run ends every process that is still its child (orphans of
PROGRAM, including daemons that left the process group: SIGTERM, then
SIGKILL), and exits. SIGUSR2 restarts PROGRAM (see restarts). SIGHUP and
SIGUSR1 are forwarded to PROGRAM (not to one that is draining).
sockact-run reaps every child, including orphans it inherits as PID 1 or as
subreaper.

exit status:
  0        stopped by SIGTERM/SIGINT with no PROGRAM running
  N        stopped by SIGTERM/SIGINT: PROGRAM's exit status (128+signal when
           a signal ended it)
  1        a system call failed
  2        bad command line: an unknown option, a bad address (quoted)
  3        cannot listen (address in use, permission) or set up NOTIFY_SOCKET
  4        the start limit or the trigger limit was hit
  126, 127 PROGRAM (or its #! interpreter) is not executable, or not found
           (checked before listening; also when exec fails later)
)help";

// Matches "-x VALUE", "-xVALUE", "--name VALUE" and "--name=VALUE" at argv[i].
bool option_value(int argc, char** argv, int& i, const char* short_name, const char* long_name,
                  std::string& value) {
  const std::string a = argv[i];
  const std::string l = std::string("--") + long_name;
  const bool is_short =
      short_name != nullptr && a.rfind(std::string("-") + short_name, 0) == 0 && a.rfind("--", 0) != 0;
  if (is_short && a.size() > 2) {
    value = a.substr(2);
    return true;
  }
  if (a.rfind(l + "=", 0) == 0) {
    value = a.substr(l.size() + 1);
    return true;
  }
  if (!is_short && a != l) return false;
  if (i + 1 >= argc) throw usage_error{"option " + a + " needs a value"};
  value = argv[++i];
  return true;
}

// Decimal digits only (no sign, space, base prefix, leading 0, which
// parse_u64 would read as octal), 1..max.
bool parse_count(const std::string& s, unsigned max, unsigned& out) {
  std::uint64_t v = 0;
  if (s.empty() || s[0] == '0' || s.find_first_not_of("0123456789") != std::string::npos ||
      sockact::detail::parse_u64(s.c_str(), v) < 0 || v == 0 || v > max)
    return false;
  out = static_cast<unsigned>(v);
  return true;
}

// BURST/SECONDS, or 0 / off.
rate_limit parse_limit(const std::string& option, const std::string& v) {
  if (v == "0" || v == "off") return rate_limit{};
  rate_limit l;
  const std::size_t slash = v.find('/');
  if (slash == std::string::npos || !parse_count(v.substr(0, slash), 1000000, l.burst) ||
      !sockact::detail::parse_seconds(v.substr(slash + 1), l.interval))
    throw usage_error{option + " \"" + v + "\": expected BURST/SECONDS, e.g. 5/10, or 0"};
  if (l.interval.count() == 0)
    throw usage_error{option + " \"" + v + "\": SECONDS must be more than 0 (0 alone turns the limit off)"};
  return l;
}

}  // namespace

std::string limit_text(const rate_limit& l) {
  return l.off() ? "0" : std::to_string(l.burst) + "/" + seconds_text(l.interval);
}

options parse_options(int argc, char** argv) {
  options o;
  bool trigger_given = false, max_given = false, fd_store_given = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    std::string v;
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;  // PROGRAM without "--"
    if (a == "-h" || a == "--help") {
      std::fputs(help_text, stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::printf("%s %d.%d.%d\n", self, SOCKACT_VERSION_MAJOR, SOCKACT_VERSION_MINOR, SOCKACT_VERSION_PATCH);
      std::exit(0);
    } else if (option_value(argc, argv, i, "l", "listen", v)) {
      o.listen.push_back(v);
    } else if (option_value(argc, argv, i, nullptr, "fdname", v)) {
      for (const std::string& n : split(v, ':')) o.fdnames.push_back(n);
    } else if (option_value(argc, argv, i, "E", "setenv", v)) {
      o.setenv.push_back(v);
    } else if (a == "-a" || a == "--accept") {
      o.accept = true;
    } else if (a == "--inetd") {
      o.accept = o.inetd = true;
    } else if (a == "-d" || a == "--datagram") {
      o.datagram = true;
    } else if (option_value(argc, argv, i, nullptr, "max-connections", v)) {
      if (!parse_count(v, 100000, o.max_connections))
        throw usage_error{"--max-connections \"" + v + "\": expected a number from 1 to 100000"};
      max_given = true;
    } else if (option_value(argc, argv, i, nullptr, "start-limit", v)) {
      o.start_limit = parse_limit("--start-limit", v);
    } else if (option_value(argc, argv, i, nullptr, "trigger-limit", v)) {
      o.trigger_limit = parse_limit("--trigger-limit", v);
      trigger_given = true;
    } else if (option_value(argc, argv, i, nullptr, "stop-timeout", v)) {
      std::chrono::milliseconds t{};
      if (v == "infinity") {
        o.stop_timeout.reset();
      } else if (sockact::detail::parse_seconds(v, t)) {
        o.stop_timeout = t;
        if (t.count() == 0) o.stop_timeout.reset();  // as systemd's TimeoutStopSec=0
      } else {
        throw usage_error{"--stop-timeout \"" + v + "\": expected a number of seconds, or infinity"};
      }
    } else if (option_value(argc, argv, i, nullptr, "watchdog", v)) {
      if (!sockact::detail::parse_seconds(v, o.watchdog) || o.watchdog.count() == 0)
        throw usage_error{"--watchdog \"" + v + "\": expected a number of seconds above 0"};
    } else if (a == "--watch") {
      o.watch_program = true;
    } else if (a.rfind("--watch=", 0) == 0) {
      if (a.size() == 8) throw usage_error{"--watch= needs a path (--watch alone watches PROGRAM)"};
      o.watch.push_back(a.substr(8));
    } else if (option_value(argc, argv, i, nullptr, "fd-store-max", v)) {
      if (v == "0")
        o.fd_store_max = 0;
      else if (!parse_count(v, fd_store_limit, o.fd_store_max))
        throw usage_error{"--fd-store-max \"" + v + "\": expected a number from 0 to " +
                          std::to_string(fd_store_limit)};
      fd_store_given = true;
    } else if (a == "--adopt") {
      o.adopt = "";
    } else if (a.rfind("--adopt=", 0) == 0) {
      o.adopt = a.substr(8);
      if (o.adopt->empty()) throw usage_error{"--adopt= needs a path"};
    } else {
      throw usage_error{"unknown option \"" + a + "\" (see --help)"};
    }
  }
  for (; i < argc; ++i) o.program.push_back(argv[i]);
  o.program.push_back(nullptr);
  if (o.program.size() == 1)
    throw usage_error{"no PROGRAM given: sockact-run [OPTIONS] -- PROGRAM [ARGS...]"};
  if (o.listen.empty()) throw usage_error{"no --listen ADDR given"};
  if (o.listen.size() > 64) throw usage_error{"more than 64 --listen addresses"};
  if (max_given && !o.accept) throw usage_error{"--max-connections is for --accept and --inetd"};
  if (o.datagram && o.accept) throw usage_error{"--accept is for stream sockets, not with --datagram"};
  if (o.accept && (o.watch_program || !o.watch.empty()))
    throw usage_error{"--watch is not for --accept or --inetd: each connection starts PROGRAM anew already"};
  if (o.accept && fd_store_given)
    throw usage_error{
        "--fd-store-max is not for --accept or --inetd (a connection's PROGRAM has no successor)"};
  if (o.fdnames.size() > o.listen.size())
    throw usage_error{std::to_string(o.fdnames.size()) + " --fdname names for " +
                      std::to_string(o.listen.size()) + " --listen addresses"};
  for (const std::string& n : o.fdnames)
    if (n.empty() || n.size() > 255 || n.find_first_of(" \t\n=") != std::string::npos)
      throw usage_error{"--fdname \"" + n + "\": a name is 1..255 characters without ':', '=' or spaces"};
  for (const std::string& e : o.setenv)
    if (e.empty() || e[0] == '=') throw usage_error{"--setenv \"" + e + "\": expected NAME[=VALUE]"};
  // With --accept every start takes a connection of its own: a socket left
  // readable cannot re-trigger, and a healthy burst is not a loop.
  if (o.accept && !trigger_given) o.trigger_limit = rate_limit{};
  return o;
}

}  // namespace sockact_run
