package cli

import (
	"net"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestErrorMessages: an endpoint that is down, a wrong explicit region and
// a region left to discovery, each as the user meets them: one stderr line
// naming what failed and what to do, exit 2, nothing written. (Each kind of
// error is tested on its own in internal/store/s3, TestExplain*.)
func TestErrorMessages(t *testing.T) {
	e := newEnv(t)
	isolateConfig(t, "")
	src := mkBucket(t, e.a)
	put(t, e.a, src, "p/k", []byte("v"), nil)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	r := ferry(t, append([]string{"copy", "s3://" + src + "/p", "s3://dst/reg/", "--dst-endpoint", closed, "--dst-profile", "a"}, e.srcA()...)...)
	oneLineErr(t, r, ExitUsage, "ferry: destination s3://dst/reg/: destination endpoint "+closed+
		" could not be reached (connection refused): is the server running, and is --dst-endpoint right?")

	// A server in eu-west-1.
	eu := testenv.StartMinIO(t, testenv.MinIOOptions{Region: "eu-west-1"})
	eu.CreateBucket(t, "dst")
	creds, _ := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"a": e.a, "eu": eu})
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	euDst := []string{"--dst-endpoint", eu.Endpoint, "--dst-profile", "eu"}

	r = ferry(t, append(append([]string{"copy", "s3://" + src + "/p", "s3://dst/reg/", "--dst-region", "us-east-1"}, e.srcA()...), euDst...)...)
	oneLineErr(t, r, ExitUsage, "ferry: destination s3://dst/reg/: bucket s3://dst is in region eu-west-1, not us-east-1: pass --dst-region eu-west-1")

	// No region given: the server's is used, and said so.
	r = ferry(t, append(append([]string{"copy", "s3://" + src + "/p", "s3://dst/reg/", "--skip-preflight"}, e.srcA()...), euDst...)...)
	if r.code != 0 || !strings.Contains(r.err, "ferry: destination s3://dst/reg/: bucket s3://dst is in region eu-west-1 (the server says so); using it (--dst-region eu-west-1 skips asking)") {
		t.Fatalf("discovered region: exit %d\nstderr: %s", r.code, r.err)
	}
	if ks := keys(t, eu, "dst"); len(ks) != 1 || ks[0] != "reg/k" {
		t.Fatalf("keys at the destination: %q", ks)
	}

	// preflight explains its failed checks the same way.
	r = ferryCmd(t, append(append([]string{"preflight", "s3://" + src + "/p", "s3://dst/reg/", "--dst-region", "us-east-1"}, e.srcA()...), euDst...)...)
	if r.code != ExitFailed || !regexpLine(r.out, "destination", "bucket", "fail", "HeadBucket: bucket s3://dst is in region eu-west-1, not us-east-1: pass --dst-region eu-west-1") {
		t.Fatalf("preflight, wrong region: exit %d\n%s%s", r.code, r.out, r.err)
	}
}
