# Pulse server image for operators: builds @pulse/server from this repository, packs it, and installs
# the tarball the way `npm install @pulse/server` would. The entry command is the one the adoption
# test (tests/adoption) runs against the same tarball: `npx --no -- pulse-server`.
# Configure with the environment (README "Configuration"): PULSE_JWT_SECRET is required in production.

FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles from source where no prebuilt binary can be downloaded.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund \
  && npx turbo run build --filter=@pulse/server \
  && cd packages/server && npm pack --pack-destination /tmp/pack

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/pulse
COPY --from=build /tmp/pack/ /tmp/pack/
RUN echo '{"name":"pulse-server-host","private":true}' > package.json \
  && npm install --omit=dev --no-audit --no-fund /tmp/pack/pulse-server-*.tgz \
  && rm -rf /tmp/pack ~/.npm \
  && apt-get purge -y python3 make g++ && apt-get autoremove -y \
  && mkdir -p /data && chown node:node /data
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3001 PULSE_DATA_DIR=/data
USER node
EXPOSE 3001
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD node -e "fetch('http://127.0.0.1:3001/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
CMD ["npx", "--no", "--", "pulse-server"]
