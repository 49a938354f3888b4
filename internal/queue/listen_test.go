package queue_test

import (
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/queue"
)

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr      string
		auth, tls bool
		want      string // "" = accepted
	}{
		{"127.0.0.1:4222", false, false, ""},
		{"localhost:4222", true, false, ""},
		{"[::1]:4222", true, false, ""},
		{"0.0.0.0:4222", true, false, "needs TLS"},
		{":4222", true, false, "needs TLS"},
		{"10.0.0.5:4222", true, false, "needs TLS"},
		{"10.0.0.5:4222", false, true, "needs authentication"},
		{"10.0.0.5:4222", true, true, ""},
		{"4222", true, true, "want HOST:PORT"},
	} {
		err := queue.CheckListen(tc.addr, tc.auth, tc.tls)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckListen(%q, auth %v, tls %v) = %v, want %q", tc.addr, tc.auth, tc.tls, err, tc.want)
		}
	}
}

func TestPermissionsWorkerIsNarrower(t *testing.T) {
	coord, _ := queue.Permissions(queue.Coordinator)
	worker, sub := queue.Permissions(queue.Worker)
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for _, s := range worker {
		if !has(coord, s) && !strings.HasPrefix(s, "ferry.") {
			t.Errorf("the worker may publish to %s, the coordinator may not", s)
		}
	}
	for _, s := range []string{"$JS.API.STREAM.CREATE." + queue.StreamWork, "$JS.API.STREAM.PURGE." + queue.StreamResults, "$KV." + queue.BucketLocks + ".>", "ferry.>"} {
		if has(worker, s) {
			t.Errorf("the worker may publish to %s", s)
		}
		if !has(coord, s) {
			t.Errorf("the coordinator may not publish to %s", s)
		}
	}
	if len(sub) != 1 || sub[0] != "_INBOX.>" {
		t.Errorf("subscribe %v, want only _INBOX.>", sub)
	}
	for _, s := range append(coord, worker...) {
		for _, tok := range strings.Split(s, ".") {
			if len(tok) > 1 && (strings.Contains(tok, "*") || strings.Contains(tok, ">")) {
				t.Errorf("%s: a wildcard inside a token matches nothing in NATS", s)
			}
		}
	}
}
