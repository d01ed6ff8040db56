# syntax=docker/dockerfile:1
# One image with both binaries: the gateway (the default entrypoint) and the
# demo services (docker-compose.yml runs it with entrypoint
# /usr/local/bin/demo).
#   docker build -t braid .
#   docker run --rm -p 8080:8080 braid     # upstreams from the environment, see gateway.yaml
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static binaries (no cgo), so that they run on distroless/static.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/gateway ./cmd/demo

# No shell, no curl: the healthcheck is the gateway's own subcommand.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /out/demo /usr/local/bin/
COPY gateway.yaml /etc/braid/gateway.yaml
# 8080 public, 9090 admin (/healthz, /readyz, /metrics; gateway.yaml binds it
# to the container's loopback unless BRAID_ADMIN_LISTEN says otherwise),
# 9101-9105 the demo services.
EXPOSE 8080 9090 9101-9105
USER nonroot:nonroot
# GET /readyz on the admin listener ($BRAID_ADMIN_LISTEN, default
# 127.0.0.1:9090): healthy on 200, so a draining gateway turns unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway", "-config", "/etc/braid/gateway.yaml"]
