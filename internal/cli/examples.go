package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples are the Example sections of the commands that do not set their
// own, by command path. Every command's help has one (a test checks).
var examples = map[string]string{
	"ferry": `  ferry copy s3://photos/2024 ./restore
  ferry copy s3://photos/2024/cat.jpg ./cat.jpg      # one object
  ferry sync ./data s3://backup/data --delete --max-delete 5%
  ferry verify s3://photos/2024 ./restore --include '*.jpg'
  ferry job list`,
	"ferry verify": `  ferry verify s3://photos/2024 ./restore
  ferry verify s3://photos/2024 s3://archive/2024 --dst-endpoint https://minio.example:9000 --json
  ferry verify s3://photos/2024 ./restore --include '*.jpg' --exact`,
	"ferry job": `  ferry job list
  ferry job status k3xqmv2hq7d4nb5a
  ferry job pause k3xqmv2hq7d4nb5a && ferry job resume k3xqmv2hq7d4nb5a`,
	"ferry key":        "  ferry key show\n  ferry key new fleet.key",
	"ferry key show":   "  ferry key show                                   # on the coordinator's machine\n  ferry worker --nats tls://nats.internal:4222 --trust ferry-ed25519:3TQnDC1LbZGhUYpxGtTKliQHEQjlpyM-SwCz0IQ1MM0",
	"ferry job list":   "  ferry job list\n  ferry job list --json",
	"ferry job status": "  ferry job status k3xqmv2hq7d4nb5a\n  ferry job status k3xqmv2hq7d4nb5a --json",
	"ferry job pause":  "  ferry job pause k3xqmv2hq7d4nb5a",
	"ferry job resume": "  ferry job resume k3xqmv2hq7d4nb5a\n  ferry job resume k3xqmv2hq7d4nb5a --workers 0 --nats tls://nats.internal:4222",
	"ferry job cancel": "  ferry job cancel k3xqmv2hq7d4nb5a",
	"ferry job rm": `  ferry job rm k3xqmv2hq7d4nb5a --dry-run
  ferry job rm k3xqmv2hq7d4nb5a --audit              # its audit log too`,
	"ferry job prune": `  ferry job prune --older-than 30d --dry-run
  ferry job prune --older-than 30d
  ferry job prune --older-than 2026-01-01 --audit`,
	"ferry dlq": `  ferry dlq list k3xqmv2hq7d4nb5a
  ferry dlq redrive k3xqmv2hq7d4nb5a`,
	"ferry dlq list":    "  ferry dlq list k3xqmv2hq7d4nb5a\n  ferry dlq list k3xqmv2hq7d4nb5a --json",
	"ferry dlq redrive": "  ferry dlq redrive k3xqmv2hq7d4nb5a",
	"ferry worker": `  ferry worker --nats tls://nats.internal:4222 --nats-creds ferry.creds --trust-file trusted-keys
  ferry worker --nats tls://nats.internal:4222 --nats-nkey worker.nk --trust-file trusted-keys \
    --allow-endpoint https://minio.internal:9000 --allow-profile onprem --allow-local /srv/exports
  ferry worker --nats tls://nats.internal:4222 --job k3xqmv2hq7d4nb5a --concurrency 64`,
	"ferry ui": `  ferry ui                                   # http://127.0.0.1:8080, token printed at start
  ferry ui --addr 127.0.0.1:9090 --nats tls://nats.internal:4222
  ferry copy s3://photos/2024 ./restore --ui-addr 127.0.0.1:8080`,
	"ferry policy": `  ferry policy s3://photos/2024 s3://archive/2024
  ferry policy ./data s3://backup/data --delete`,
	"ferry preflight": `  ferry preflight s3://photos/2024 s3://archive/2024
  ferry preflight ./data s3://backup/data --dst-profile backup`,
	"ferry bucket": "  ferry bucket create s3://archive --secure --region eu-west-1",
	"ferry secret": `  ferry secret set minio < minio-credentials.ini
  ferry secret list
  ferry copy ./data s3://backup/data --dst-secret minio`,
	"ferry secret list": "  ferry secret list",
	"ferry secret rm":   "  ferry secret rm minio",
	"ferry audit":       "  ferry audit verify ~/.local/state/ferry/audit/k3xqmv2hq7d4nb5a.jsonl",
	"ferry audit verify": `  ferry audit verify ~/.local/state/ferry/audit/k3xqmv2hq7d4nb5a.jsonl
  ferry audit verify job.jsonl --expect-last 3f2a...`,
	"ferry completion": `  source <(ferry completion bash)
  ferry completion zsh > "${fpath[1]}/_ferry"
  ferry completion fish > ~/.config/fish/completions/ferry.fish`,
	"ferry completion bash":       "  source <(ferry completion bash)\n  ferry completion bash > /etc/bash_completion.d/ferry",
	"ferry completion zsh":        "  ferry completion zsh > \"${fpath[1]}/_ferry\"",
	"ferry completion fish":       "  ferry completion fish > ~/.config/fish/completions/ferry.fish",
	"ferry completion powershell": "  ferry completion powershell | Out-String | Invoke-Expression",
	"ferry help":                  "  ferry help copy",
}

// setExamples fills in the Example of every command that has none.
func setExamples(root *cobra.Command) {
	walk(root, func(c *cobra.Command) {
		if strings.TrimSpace(c.Example) == "" {
			c.Example = examples[c.CommandPath()]
		}
	})
}
