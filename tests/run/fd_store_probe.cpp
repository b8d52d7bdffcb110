// fd_store_probe: a program for run_fd_store.sh. Each start serves one
// connection on its listening socket and exits. It keeps a counter in a memfd
// that it hands to the fd store as "state" (notify_state::fd_store), so the
// next start finds the counter there. The request line picks what it sends:
//   (empty)  nothing more
//   again    the "state" fd once more (the store keeps one copy)
//   remove   FDSTOREREMOVE=1 FDNAME=state
//   pipe     a pipe's read end as "pipe"; the write end closes at exit
//            (POLLHUP: the store drops it); and another as "kept" with
//            FDPOLL=0 (kept)
//   badname  an fd with FDNAME=a:b (invalid: stored as "stored")
// The answer: "names=<LISTEN_FDNAMES> state=<counter> fds=<LISTEN_FDS>".
// SPDX-License-Identifier: MIT

#include <sockact/listen_fds.hpp>
#include <sockact/notify.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

void say(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t n = s.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

int fail(const char* what) {
  std::perror(what);
  return 1;
}

using sockact::notify_state;

}  // namespace

int main() {
  std::error_code ec;
  const char* count = std::getenv("LISTEN_FDS");
  const std::string fds_text = count != nullptr ? count : "-";
  const std::vector<sockact::passed_fd> fds = sockact::listen_fds({true}, ec);
  if (ec) return fail("listen_fds");
  int listener = -1, state = -1;
  std::string names;
  for (const sockact::passed_fd& f : fds) {
    names += (names.empty() ? "" : ":") + f.name;
    if (f.name == "web") listener = f.fd;
    if (f.name == "state" && state < 0) state = f.fd;
  }
  if (listener < 0) return fail("no fd named web");

  unsigned long counter = 0;
  if (state >= 0) {
    char buf[32] = {};
    if (::pread(state, buf, sizeof buf - 1, 0) > 0) counter = std::strtoul(buf, nullptr, 10);
  } else {
    state = ::memfd_create("fd_store_probe", MFD_CLOEXEC);
    if (state < 0) return fail("memfd_create");
    if (!sockact::notify(notify_state::fd_store("state"), &state, 1, {}, ec) || ec)
      return fail("notify FDSTORE=1");
  }
  const std::string value = std::to_string(++counter);
  if (::ftruncate(state, 0) < 0 || ::pwrite(state, value.data(), value.size(), 0) < 0) return fail("pwrite");

  const int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return fail("accept4");
  char line[256] = {};
  const ssize_t got = ::read(c, line, sizeof line - 1);
  std::string command = got > 0 ? std::string(line, static_cast<std::size_t>(got)) : "";
  while (!command.empty() && (command.back() == '\n' || command.back() == '\r')) command.pop_back();

  int keep_open[2] = {-1, -1};  // the write ends of the pipes: closed at exit
  if (command == "again") {
    sockact::notify(notify_state::fd_store("state"), &state, 1, {}, ec);
  } else if (command == "remove") {
    sockact::notify("FDSTOREREMOVE=1\nFDNAME=state", ec);
  } else if (command == "pipe") {
    int p[2], q[2];
    if (::pipe2(p, O_CLOEXEC) < 0 || ::pipe2(q, O_CLOEXEC) < 0) return fail("pipe2");
    sockact::notify(notify_state::fd_store("pipe"), &p[0], 1, {}, ec);
    sockact::notify("FDSTORE=1\nFDNAME=kept\nFDPOLL=0", &q[0], 1, sockact::notify_options{}, ec);
    keep_open[0] = p[1];
    keep_open[1] = q[1];
  } else if (command == "badname") {
    const int fd = ::memfd_create("fd_store_probe_bad", MFD_CLOEXEC);
    sockact::notify(notify_state::fd_store("a:b"), &fd, 1, {}, ec);
  }
  if (ec) return fail(command.c_str());
  say(c, "names=" + names + " state=" + value + " fds=" + fds_text + "\n");
  ::close(c);
  (void)keep_open;
  return 0;
}
