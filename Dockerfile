# consentd container image: a static binary on distroless, run as the
# non-root user 65532. VERSION is stamped into the binary (`make image`
# passes the git description). The build tag nodemo leaves `consentd demo`
# (its in-process broker and Redis) out of the production binary; the image
# has no shell: `consentd healthcheck` is its health probe.
FROM golang:1.26-bookworm AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -tags nodemo -ldflags "-s -w -X main.version=${VERSION}" -o /out/consentd ./cmd/consentd \
    && mkdir -p /out/root && mkdir -m 0700 /out/root/keys

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="consentd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/consentd/consentd"
COPY --from=build /out/consentd /usr/local/bin/consentd
COPY configs/ /etc/consentd/
# /keys (mode 0700) belongs to the non-root user, so that a volume mounted
# there starts out writable by `consentd keygen` running as that user
# (Docker copies the directory's owner into a new named volume). Copied as
# an entry of /out/root so that --chown applies to the directory itself.
COPY --from=build --chown=65532:65532 /out/root/ /
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/consentd"]
CMD ["run", "--config", "/etc/consentd/consentd.compose.yaml"]
