# syntax=docker/dockerfile:1
# One Dockerfile for every Herald image:
#   docker build --build-arg SERVICE=collector -t herald-collector .
# SERVICE is collector, engine, registry, dispatcher or audit (the binary
# services/<svc>/cmd/herald-<svc>), or herald (the all-in-one).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
ARG SERVICE
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    case "${SERVICE:?build with --build-arg SERVICE=<collector|engine|registry|dispatcher|audit|herald>}" in \
      herald) pkg=./services/herald ;; \
      collector|engine|registry|dispatcher|audit) pkg=./services/${SERVICE}/cmd/herald-${SERVICE} ;; \
      *) echo "unknown SERVICE ${SERVICE}" >&2; exit 1 ;; \
    esac; \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o /out/herald "$pkg"

# busybox's static wget serves the compose health checks: distroless has
# no shell or HTTP client.
FROM busybox:1.37-musl AS busybox

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot
# (65532), and nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=busybox /bin/busybox /bin/busybox
COPY --from=build /out/herald /herald
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/herald"]
