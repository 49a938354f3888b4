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
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	GOBIN="$tmp" GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED="${CGO_ENABLED:-0}" \
		go install "$module@$version"
	local built="$tmp/$(basename "${module%%/v[0-9]*}")"
	if [[ ! -x "$built" ]]; then
		# The binary is named after the last path element of the module.
		built="$(find "$tmp" -maxdepth 1 -type f -perm -u+x | head -n1)"
	fi
	if [[ -z "$built" || ! -x "$built" ]]; then
		echo "install-tools: go install $module@$version produced no binary" >&2
		return 1
	fi
	mv "$built" "$bin"
	echo "install-tools: installed $bin"
}

# Pinned tools: one line each.
install_go_tool minio github.com/minio/minio v0.0.0-20260212201848-7aac2a2c5b7c
# install_go_tool nats-server github.com/nats-io/nats-server/v2 vX.Y.Z
# install_go_tool s5cmd github.com/peak/s5cmd/v2 vX.Y.Z
# install_go_tool rclone github.com/rclone/rclone vX.Y.Z
