// An app written without socket activation in mind: Bun.serve on its default
// port. The child's view of LD_PRELOAD and LISTEN_FDS goes into each answer.
const child = Bun.spawnSync(["/bin/sh", "-c", 'echo "${LD_PRELOAD-unset}/${LISTEN_FDS-unset}"']).stdout.toString().trim();
Bun.serve({
  port: 3000,
  fetch() {
    return new Response(`hello from bun pid=${process.pid} child-env=${child}\n`);
  },
});
