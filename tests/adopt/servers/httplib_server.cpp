// SPDX-License-Identifier: MIT
// An app written without socket activation in mind: cpp-httplib (Debian's
// libcpp-httplib-dev) listening on 0.0.0.0:PORT. SIGTERM calls stop(), which
// calls shutdown(2) on the listener: libsockact-adopt.so must keep that from
// reaching the manager's socket, or the next start would find it dead.
//   sockact-adopt-httplib PORT
#include <httplib.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);  // before any thread starts: all inherit it

  httplib::Server svr;
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello from httplib pid=" + std::to_string(getpid()) + "\n", "text/plain");
  });
  std::thread waiter([&svr, &term] {
    int sig = 0;
    sigwait(&term, &sig);
    std::fprintf(stderr, "httplib: signal %d, stop()\n", sig);
    svr.stop();
  });
  const bool ok = svr.listen("0.0.0.0", std::atoi(argv[1]));
  if (!ok) {
    std::fprintf(stderr, "httplib: listen failed\n");
    std::_Exit(1);
  }
  waiter.join();
  std::fprintf(stderr, "httplib: stopped\n");
  return 0;
}
