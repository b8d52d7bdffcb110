/* SPDX-License-Identifier: MIT
 * A compiled version-manager shim, as pyenv's, mise's and asdf's are in effect:
 * it finds the real program and execv()s it in its own process.
 *   adopt_exec_shim PROGRAM [ARGS...]   execv(PROGRAM, [basename(PROGRAM), ARGS...]) */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) return fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]), 2;
  const char* slash = strrchr(argv[1], '/');
  char* program = argv[1];
  argv[1] = (char*)(slash != NULL ? slash + 1 : program);
  execv(program, argv + 1);
  fprintf(stderr, "adopt_exec_shim: execv %s: %s\n", program, strerror(errno));
  return 127;
}
