package transport

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		url   string
		allow bool
		want  string // "" accepts; else a substring of the error
		plain bool   // the error wraps ErrInsecure
	}{
		{"empty is the https default", "", false, "", false},
		{"https", "https://s3.example.com", false, "", false},
		{"https ip", "https://10.0.0.1:9000", false, "", false},
		{"https upper case", "HTTPS://s3.example.com", false, "", false},
		{"tls", "tls://nats.example:4222", false, "", false},
		{"http loopback v4", "http://127.0.0.1:9000", false, "", false},
		{"http loopback 127/8", "http://127.3.4.5", false, "", false},
		{"http loopback v6", "http://[::1]:9000", false, "", false},
		{"http mapped loopback", "http://[::ffff:127.0.0.1]:9000", false, "", false},
		{"http localhost", "http://localhost:9000", false, "", false},
		{"http LOCALHOST.", "http://LOCALHOST.:9000", false, "", false},
		{"http private ip", "http://10.0.0.1:9000", false, "--x http://10.0.0.1:9000: plain-text", true},
		{"http name", "http://minio.internal:9000", false, "--allow-insecure-http", true},
		{"http name resolving to loopback is not trusted", "http://localtest.me", false, "plain-text", true},
		{"http localhost lookalike", "http://localhost.evil.com", false, "plain-text", true},
		{"http 0.0.0.0", "http://0.0.0.0:9000", false, "plain-text", true},
		{"http allowed", "http://10.0.0.1:9000", true, "", false},
		{"nats private", "nats://10.0.0.2:4222", false, "use tls://", true},
		{"nats loopback", "nats://127.0.0.1:4222", false, "", false},
		{"unknown scheme", "ftp://host", false, "unknown scheme", false},
		{"unknown scheme allowed", "ftp://host", true, "unknown scheme", false},
		{"no host", "http://", false, "want a URL", false},
		{"no scheme", "minio:9000", false, "want a URL", false},
		{"credentials redacted", "http://user:pw@10.0.0.1", false, "REDACTED", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check("--x", tt.url, tt.allow)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if errors.Is(err, ErrInsecure) != tt.plain {
				t.Fatalf("errors.Is(ErrInsecure) = %v, want %v", !tt.plain, tt.plain)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Fatalf("password in message: %v", err)
			}
		})
	}
}

func TestRedactHidesQueryAndFragment(t *testing.T) {
	for _, raw := range []string{
		"https://minio.example:9000/?X-Amz-Credential=AKIASECRET",
		"https://minio.example:9000#AKIASECRET",
		"http://user:AKIASECRET@10.0.0.1:9000/p?AKIASECRET#AKIASECRET",
	} {
		got := Redact(raw)
		if strings.Contains(got, "AKIASECRET") || !strings.Contains(got, "minio.example") && !strings.Contains(got, "10.0.0.1") {
			t.Errorf("Redact(%q) = %q", raw, got)
		}
		if err := Check("--dst-endpoint", raw, false); err != nil && strings.Contains(err.Error(), "AKIASECRET") {
			t.Errorf("Check(%q) echoes the secret: %v", raw, err)
		}
	}
}
