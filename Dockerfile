# netns-shell as a privileged, netshoot-style troubleshooting container.
#
#   docker run -it --rm --privileged --pid=host \
#     -v /var/run/docker/netns:/var/run/docker/netns:rslave IMAGE          # the REPL
#   docker run --rm --privileged --pid=host \
#     -v /var/run/docker/netns:/var/run/docker/netns:rslave IMAGE --list   # the host's namespaces
#
# Two ways to build it; both use this file unchanged and work with the classic builder and
# BuildKit alike (no RUN --mount, no `# syntax=` line that would need an image registry):
#
# 1. Networked (any machine that reaches Docker Hub, a Debian mirror and PyPI):
#        docker build -t netns-shell .
#    The builder stage installs netns-shell and its dependencies from the source in the context
#    and PyPI into a virtualenv; apt installs what the base lacks. BASE_IMAGE may be any Debian
#    bookworm based image with python >= 3.11, e.g. python:3.11-slim-bookworm.
#
# 2. Offline (no image registry, no PyPI inside build containers, as on this project's CI):
#        deploy/build-base-image                      # debootstrap + docker import, cached
#        deploy/build-image --offline --base netns-shell-base:bookworm --tag netns-shell
#    build-image builds the wheels on the host (`pip wheel`, with the host's pip settings and CA
#    bundle) into the context's dist/wheels and passes --build-arg WHEELS=dist/wheels: pip then
#    installs with --no-index from there. The local base already has every package, so apt has
#    nothing to fetch either. By hand: `pip wheel . -w dist/wheels` and
#    `docker build --build-arg BASE_IMAGE=netns-shell-base:bookworm --build-arg WHEELS=dist/wheels .`
#    Wheels made on the host must suit the image's python and libc: pure-Python ones do, and so
#    does wcwidth's abi3 manylinux2014 wheel; a host with another python minor version may get
#    version-specific wheels that the image's python 3.11 refuses (then build on a bookworm host).
#    (Mounting the CA bundle as a BuildKit secret into the pip step would also do where PyPI is
#    reachable only with it, but needs BuildKit/buildx and RUN --mount; the wheels need neither.)
#
# The final stage has no compiler, no pip and no apt lists: python3, the virtualenv in
# /opt/netns-shell, iproute2, tcpdump, libpcap0.8 (capture loads it through ctypes) and less
# (the pager). It runs as root on purpose: entering namespaces (setns) needs CAP_SYS_ADMIN and
# seeing other processes' namespaces needs CAP_SYS_PTRACE, which --privileged gives to root.

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
# A directory of wheels inside the context (offline build) or empty (install from PyPI).
ARG WHEELS=""
SHELL ["/bin/sh", "-eu", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# Debian's python3 + venv unless the base brings a python with venv (python:3.11-slim-bookworm).
# No version pins on purpose: the suite's packages follow the base image (pinned Debian versions
# disappear from the mirror with each security update). Nothing is fetched when nothing is missing.
# hadolint ignore=DL3008
RUN if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then \
        apt-get update; \
        apt-get install -y --no-install-recommends python3 python3-venv; \
        apt-get clean; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -c 'import sys; assert sys.version_info >= (3, 11), "netns-shell needs python >= 3.11"'
COPY . /src/
# The dependency ranges come from pyproject.toml (pins for the libraries whose behaviour we rely
# on); pip and setuptools are removed from the virtualenv afterwards: nothing needs them at run time.
RUN python3 -m venv /opt/netns-shell; \
    if [ -n "$WHEELS" ]; then \
        /opt/netns-shell/bin/pip install --no-cache-dir --no-index \
            --find-links "/src/$WHEELS" "/src/$WHEELS"/netns_shell-*.whl; \
    else \
        /opt/netns-shell/bin/pip install --no-cache-dir /src; \
    fi; \
    /opt/netns-shell/bin/pip uninstall -y -q pip setuptools; \
    /opt/netns-shell/bin/netns-shell --version

FROM ${BASE_IMAGE}
SHELL ["/bin/sh", "-eu", "-c"]
# python3 only when the base has none (the virtualenv uses the base's interpreter); the tools only
# when missing (a local base made by deploy/build-base-image has them all: no network needed).
# Unpinned for the reason given in the builder stage.
# hadolint ignore=DL3008
RUN set --; \
    command -v python3 >/dev/null || set -- python3; \
    for pkg in iproute2 tcpdump libpcap0.8 less nftables iptables; do \
        [ "$(dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || \
            set -- "$@" "$pkg"; \
    done; \
    if [ "$#" -gt 0 ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends "$@"; \
        apt-get clean; \
        rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=builder /opt/netns-shell /opt/netns-shell

# PROMPT_TOOLKIT_NO_CPR: `kubectl exec`/`attach` and some web terminals answer cursor position
# requests late or never; without CPR prompt_toolkit neither waits nor warns.
ENV PATH=/opt/netns-shell/bin:$PATH \
    PROMPT_TOOLKIT_NO_CPR=1 \
    LANG=C.UTF-8

ARG VERSION=dev
LABEL org.opencontainers.image.title="netns-shell" \
      org.opencontainers.image.description="A troubleshooting shell for Linux network namespaces: links, routes, neighbours, bridge FDB and packet capture, from a REPL or scripts" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.netns-shell.usage="docker run -it --rm --privileged --pid=host -v /var/run/docker/netns:/var/run/docker/netns:rslave IMAGE [TARGET] [--net=FILE | -t PID] [-c 'CMD; ...'] [--json] [--list]" \
      org.netns-shell.examples="IMAGE --list | IMAGE 1-9tp0f348do -c 'fdb br br0' | IMAGE --net=/var/run/docker/netns/1-9tp0f348do --json -c fdb | IMAGE -t 1 -c 'exec -a sh' | kubectl debug node/NODE -it --profile=sysadmin --image=IMAGE --env=NETNS_SHELL_PATH=/host/run/netns:/host/run/docker/netns" \
      run="docker run -it --rm --privileged --pid=host -v /var/run/docker/netns:/var/run/docker/netns:rslave IMAGE"

ENTRYPOINT ["netns-shell"]
