# NixOS module: example-posix-http in a Podman container, started by a systemd
# socket on the first connection and stopped by itself when idle.
#   imports = [ ./example-posix-http.nix ];
# Not evaluated here (no Nix on the test machines); units/ holds the units
# this is meant to produce, and those are checked with systemd-analyze verify.
{ lib, pkgs, ... }:

let
  name = "example-posix-http";
  # The server, linked statically (musl) so that the image holds one file.
  server = pkgs.pkgsStatic.stdenv.mkDerivation {
    pname = name;
    version = "0.1";
    src = ../../..;  # the sockact repository
    nativeBuildInputs = [ pkgs.cmake pkgs.ninja ];
    cmakeFlags = [ "-DSOCKACT_BUILD_TESTS=OFF" "-DSOCKACT_INSTALL=OFF" "-DSOCKACT_WERROR=OFF" ];
    buildPhase = "ninja example-posix-http";
    installPhase = "install -Dm755 examples/example-posix-http $out/bin/example-posix-http";
  };
  image = pkgs.dockerTools.buildLayeredImage {
    name = name;
    tag = "latest";
    config.Entrypoint = [ "${server}/bin/example-posix-http" ];
  };
in
{
  virtualisation.podman.enable = true;
  virtualisation.oci-containers.backend = "podman";
  virtualisation.oci-containers.containers.${name} = {
    image = "${name}:latest";
    imageFile = image;      # loaded with `podman load`; no registry
    autoStart = false;      # the socket starts it, not multi-user.target
    # Reaches the program inside (podman -e); LISTEN_* come from systemd.
    environment = { IDLE_TIMEOUT = "60"; SHUTDOWN_TIMEOUT = "30"; };
    # No network: the socket is systemd's, passed in as fd 3. No --init: the
    # server must be PID 1 (LISTEN_PID=1), or have SOCKACT_ALLOW_PARENT_PID=1 set.
    extraOptions = [ "--network=none" ];
  };

  # The socket has the service's name (podman-<name>), so it activates it.
  systemd.sockets."podman-${name}" = {
    wantedBy = [ "sockets.target" ];
    listenStreams = [ "127.0.0.1:8060" ];
    socketConfig.FileDescriptorName = "web";
  };

  systemd.services."podman-${name}" = {
    requires = [ "podman-${name}.socket" ];
    after = [ "podman-${name}.socket" ];
    # oci-containers sets Restart=always, which would start the container again
    # right after every idle exit (status 0): restart only on failures.
    serviceConfig.Restart = lib.mkForce "on-failure";
    # Activations are service starts: the default start limit (5 in 10 s) can
    # fail the socket when clients come and go around the idle deadline.
    startLimitIntervalSec = 10;
    startLimitBurst = 100;
  };
}
