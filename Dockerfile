# Build a static binary, run it as an unprivileged user (uid 65532) on a
# small image.
FROM golang:1.27 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION is reported by /public/status and GET /; unset, the build
# information decides.
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/tollgate/tollgate/server.Version=${VERSION}" -o /out/tollgate . \
 && mkdir -p /out/keys

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tollgate /tollgate
# An empty /keys owned by the runtime user: a named volume mounted here is
# created with this owner, so the key service (same user) can write the
# pair into it and the app can read its 0600 private key.
COPY --from=build --chown=65532:65532 /out/keys /keys
USER 65532:65532
# Production unless told otherwise: development would serve /dev/users
# (admins for anyone) to whoever reaches the port.
ENV APP_ENV=production
EXPOSE 8080
ENTRYPOINT ["/tollgate"]
