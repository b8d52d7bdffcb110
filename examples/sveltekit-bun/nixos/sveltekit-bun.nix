# NixOS module: the SvelteKit app on Bun in a Podman container, started by a
# systemd socket on the first connection and stopped by itself when idle
# (libsockact-adopt.so in the image: Bun cannot take a passed socket alone).
#   imports = [ ./sveltekit-bun.nix ];
# Not evaluated here (no Nix on the test machines); units/ holds the units
# this is meant to produce. tests/podman checks them with systemd-analyze
# verify, compares them with this file (sveltekit_nixos_units.sh) and runs them
# with Podman. pkgs.bun is your channel's Bun; the tests use Bun 1.4.4.
{ lib, pkgs, ... }:

let
  name = "sveltekit-bun";
  # Sources without what a checkout builds or installs locally (build trees,
  # .cache/npm with Bun, node_modules).
  clean = src: lib.cleanSourceWith {
    inherit src;
    filter = path: type:
      !(builtins.elem (baseNameOf path) [ "node_modules" ".svelte-kit" ".cache" ])
      && !(lib.hasPrefix "build" (baseNameOf path) && type == "directory");
  };
  # libsockact-adopt.so, from the sockact repository.
  adopt = pkgs.stdenv.mkDerivation {
    pname = "libsockact-adopt";
    version = "0.1";
    src = clean ../../..;
    nativeBuildInputs = [ pkgs.cmake pkgs.ninja ];
    cmakeFlags = [ "-DSOCKACT_BUILD_TESTS=OFF" "-DSOCKACT_BUILD_EXAMPLES=OFF" "-DSOCKACT_INSTALL=OFF" "-DSOCKACT_WERROR=OFF" ];
    buildPhase = "ninja sockact_adopt";
    installPhase = "install -Dm755 tools/libsockact-adopt.so $out/lib/libsockact-adopt.so";
  };
  # The app: npm ci from app/package-lock.json, then vite build.
  app = pkgs.buildNpmPackage {
    pname = name;
    version = "0.0.0";
    src = clean ../app;
    npmDepsHash = lib.fakeHash;  # the first build fails and prints the hash to put here
    installPhase = "mkdir -p $out && cp -R build package.json $out/";
  };
  # The same layout as ../make-rootfs.sh, with store paths: the image's
  # entry point and LD_PRELOAD name them, so they are in the image.
  image = pkgs.dockerTools.buildLayeredImage {
    inherit name;
    tag = "latest";
    config.Entrypoint = [ "${pkgs.bun}/bin/bun" "${app}/build/index.js" ];
    config.Env = [ "LD_PRELOAD=${adopt}/lib/libsockact-adopt.so" ];
  };
in
{
  virtualisation.podman.enable = true;
  virtualisation.oci-containers.backend = "podman";
  virtualisation.oci-containers.containers.${name} = {
    image = "${name}:latest";
    imageFile = image;      # loaded with `podman load`; no registry
    autoStart = false;      # the socket starts it, not multi-user.target
    # Reaches the app inside (podman -e); LISTEN_* come from systemd.
    environment = {
      SOCKACT_ADOPT = "web=*:3000";
      IDLE_TIMEOUT = "60";
      SHUTDOWN_TIMEOUT = "30";
    };
    # No network: the socket is systemd's, passed in as fd 3. No --init: Bun
    # must be PID 1 (LISTEN_PID=1).
    extraOptions = [ "--network=none" ];
  };

  # The socket has the service's name (podman-<name>), so it activates it.
  systemd.sockets."podman-${name}" = {
    wantedBy = [ "sockets.target" ];
    listenStreams = [ "127.0.0.1:8120" ];
    socketConfig.FileDescriptorName = "web";
  };

  systemd.services."podman-${name}" = {
    requires = [ "podman-${name}.socket" ];
    after = [ "podman-${name}.socket" ];
    # oci-containers sets Restart=always, which would start the container again
    # right after every idle exit: the idle exit is the normal end of a run.
    serviceConfig.Restart = lib.mkForce "no";
    # Activations are service starts: the default start limit (5 in 10 s) can
    # fail the socket when clients come and go around the idle deadline.
    startLimitIntervalSec = 10;
    startLimitBurst = 100;
  };
}
