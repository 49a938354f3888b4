#!/usr/bin/env bash
# install-tools.sh installs the pinned external tools ferry's tests run
# (MinIO, and later nats-server, s5cmd, rclone) into a tools directory:
#
#   ${FERRY_TOOLS_DIR:-$HOME/.cache/ferry/tools}/NAME-VERSION/NAME
#
# A tool already present at its versioned path is left alone, so the script is
# cheap to run again. Tools are built from source with the Go toolchain
# (go install at a pinned module version), which needs only the Go module
# proxy. internal/testenv looks the binaries up at the same paths; keep the
# versions here and there in step.
set -euo pipefail

FERRY_TOOLS_DIR="${FERRY_TOOLS_DIR:-$HOME/.cache/ferry/tools}"

# install_go_tool NAME MODULE VERSION
#   Builds MODULE@VERSION with go install into $FERRY_TOOLS_DIR/NAME-VERSION
#   unless $FERRY_TOOLS_DIR/NAME-VERSION/NAME already exists.
install_go_tool() {
	local name="$1" module="$2" version="$3"
	local dir="$FERRY_TOOLS_DIR/$name-$version"
	local bin="$dir/$name"
	if [[ -x "$bin" ]]; then
		echo "install-tools: $name $version already installed: $bin"
		return 0
	fi
	echo "install-tools: building $name from $module@$version (this can take minutes)"
	mkdir -p "$dir"
	# Build into a scratch directory first so an interrupted build never
	# leaves a half-written binary at the final path.
	local tmp
	tmp="$(mktemp -d "$dir/.build.XXXXXX")"
	if ! GOBIN="$tmp" GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED="${CGO_ENABLED:-0}" \
		go install "$module@$version"; then
		rm -rf "$tmp"
		echo "install-tools: go install $module@$version failed" >&2
		return 1
	fi
	# The binary is named after the module's last path element (without a
	# /vN major version suffix); fall back to the only file built.
	local built
	built="$tmp/$(basename "${module%%/v[0-9]*}")"
	if [[ ! -x "$built" ]]; then
		built="$(find "$tmp" -maxdepth 1 -type f -perm -u+x | head -n1)"
	fi
	if [[ -z "$built" || ! -x "$built" ]]; then
		rm -rf "$tmp"
		echo "install-tools: go install $module@$version produced no binary" >&2
		return 1
	fi
	mv "$built" "$bin"
	rm -rf "$tmp"
	echo "install-tools: installed $bin"
}

# Pinned tools: one line each.
install_go_tool minio github.com/minio/minio v0.0.0-20260212201848-7aac2a2c5b7c
install_go_tool nats-server github.com/nats-io/nats-server/v2 v2.15.2
# Versity Gateway (posix backend) for the S3 compatibility tests; keep in step
# with testenv.VersityGWVersion.
install_go_tool versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0
# install_go_tool nats-server github.com/nats-io/nats-server/v2 vX.Y.Z

# install_go_module_build NAME MODULE VERSION PACKAGE
#   Builds PACKAGE (a path inside the module, e.g. ./weed) from the source of
#   MODULE@VERSION as the module proxy serves it, into
#   $FERRY_TOOLS_DIR/NAME-VERSION/NAME. For modules whose go.mod has replace
#   directives, which `go install m@v` refuses: the build runs inside a
#   writable copy of the module, so its go.mod (replaces included) and
#   go.sum apply.
install_go_module_build() {
	local name="$1" module="$2" version="$3" pkg="$4"
	local dir="$FERRY_TOOLS_DIR/$name-$version"
	local bin="$dir/$name"
	if [[ -x "$bin" ]]; then
		echo "install-tools: $name $version already installed: $bin"
		return 0
	fi
	echo "install-tools: building $name from the source of $module@$version (this can take 10 minutes or more)"
	mkdir -p "$dir"
	local tmp src
	tmp="$(mktemp -d "$dir/.build.XXXXXX")"
	# shellcheck disable=SC2064
	trap "chmod -R u+w '$tmp' 2>/dev/null; rm -rf '$tmp'" RETURN
	src="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	if [[ -z "$src" || ! -d "$src" ]]; then
		echo "install-tools: go mod download $module@$version gave no source directory" >&2
		return 1
	fi
	cp -R "$src" "$tmp/src"
	chmod -R u+w "$tmp/src"
	(
		cd "$tmp/src"
		GOFLAGS="-buildvcs=false" CGO_ENABLED="${CGO_ENABLED:-0}" \
			go build -trimpath -o "$tmp/$name.bin" "$pkg"
	)
	mv "$tmp/$name.bin" "$bin"
	echo "install-tools: installed $bin"
}

# SeaweedFS for the S3 compatibility tests; keep in step with
# testenv.SeaweedFSVersion. Its go.mod has replace directives.
install_go_module_build weed github.com/seaweedfs/seaweedfs v0.0.0-20261109003541-7506e5f91cd6 ./weed

# Benchmark peers (bench/), opt-in so `make test` never builds rclone:
#   scripts/install-tools.sh bench
# Keep the versions in step with bench/tools.go.
# install_go_tool_in_module NAME MODULE VERSION
#   Like install_go_tool, but builds MODULE@VERSION as the only requirement of
#   a throwaway module (go get + go build). `go install m@v` also fetches the
#   module's version list to look for a deprecation notice, and some proxies
#   refuse that list (s5cmd/v2's); go get at an exact version does not need it.
#   The dependency versions are the same as go install picks (MVS over
#   MODULE's own go.mod).
install_go_tool_in_module() {
	local name="$1" module="$2" version="$3"
	local dir="$FERRY_TOOLS_DIR/$name-$version"
	local bin="$dir/$name"
	if [[ -x "$bin" ]]; then
		echo "install-tools: $name $version already installed: $bin"
		return 0
	fi
	echo "install-tools: building $name from $module@$version (this can take minutes)"
	mkdir -p "$dir"
	local tmp
	tmp="$(mktemp -d "$dir/.build.XXXXXX")"
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	(
		cd "$tmp"
		go mod init ferry-tools-build >/dev/null 2>&1
		go get "$module@$version"
		GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED="${CGO_ENABLED:-0}" \
			go build -trimpath -o "$tmp/$name.bin" "$module"
	)
	mv "$tmp/$name.bin" "$bin"
	echo "install-tools: installed $bin"
}

if [[ "${1:-}" == "bench" ]]; then
	install_go_tool_in_module s5cmd github.com/peak/s5cmd/v2 v2.3.0
	install_go_tool rclone github.com/rclone/rclone v1.76.0
fi
