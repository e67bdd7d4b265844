# consentd container image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/consentd ./cmd/consentd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/consentd /usr/local/bin/consentd
COPY configs/ /etc/consentd/
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/consentd"]
CMD ["run", "--config", "/etc/consentd/consentd.compose.yaml"]
