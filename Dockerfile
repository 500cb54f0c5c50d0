# syntax=docker/dockerfile:1
# The auth-service image for those who build with Docker. `make image` builds
# the same image without Docker (e2e/ociimage): one static binary on an empty
# base, non-root UID 65532, entrypoint auth-service.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY service ./service
COPY internal ./internal
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
    -o /out/auth-service ./service/cmd/auth-service

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="nova-auth auth-service" \
      org.opencontainers.image.source="https://github.com/nova-auth/nova-auth" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/auth-service /usr/local/bin/auth-service
USER 65532:65532
EXPOSE 9080 8080
ENTRYPOINT ["/usr/local/bin/auth-service"]
CMD ["serve"]
