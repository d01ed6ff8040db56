# One image with both binaries: the gateway and the demo services.
#   docker build -t braid .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/gateway ./cmd/gateway && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/demo ./cmd/demo

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /out/demo /usr/local/bin/
COPY gateway.yaml /etc/braid/gateway.yaml
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/gateway", "-config", "/etc/braid/gateway.yaml"]
