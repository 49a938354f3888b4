package testenv_test

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-dev/ferry/internal/testenv"
)

func TestMinIO(t *testing.T) {
	plain := testenv.StartMinIO(t, testenv.MinIOOptions{})
	secure := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})

	if !strings.HasPrefix(plain.Endpoint, "http://127.0.0.1:") || plain.CAFile != "" {
		t.Errorf("plain: Endpoint %q CAFile %q", plain.Endpoint, plain.CAFile)
	}
	if !strings.HasPrefix(secure.Endpoint, "https://127.0.0.1:") || secure.CAFile == "" {
		t.Errorf("tls: Endpoint %q CAFile %q", secure.Endpoint, secure.CAFile)
	}
	if plain.AccessKey == secure.AccessKey || plain.SecretKey == secure.SecretKey {
		t.Error("servers share credentials")
	}

	ctx := t.Context()
	plain.CreateBucket(t, "plain")
	if _, err := plain.Client().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("plain")}); err != nil {
		t.Fatalf("head bucket on plain server: %v", err)
	}

	secure.CreateBucket(t, "secure")
	c := secure.Client()
	body := []byte("hello over TLS")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("secure"), Key: aws.String("a/b.txt"), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("put: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secure"), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("get = %q, %v; want %q", got, err, body)
	}

	// Without the CA the certificate must not verify.
	if _, err := http.Get(secure.Endpoint + "/minio/health/live"); err == nil {
		t.Error("TLS server verified without its CA")
	}

	cred, conf := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"src": plain, "dst": secure})
	for _, f := range []string{cred, conf} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("src")) || !bytes.Contains(b, []byte("dst")) {
			t.Errorf("%s lacks a profile:\n%s", f, b)
		}
	}
}

func TestNewCA(t *testing.T) {
	ca := testenv.NewCA(t)
	sc := ca.ServerCert(t, "127.0.0.1", "example.test")
	leaf := sc.TLS.Leaf
	if leaf == nil {
		t.Fatal("no leaf")
	}
	if _, err := leaf.Verify(x509VerifyOptions(ca, "example.test")); err != nil {
		t.Errorf("verify DNS name: %v", err)
	}
	if _, err := leaf.Verify(x509VerifyOptions(ca, "127.0.0.1")); err != nil {
		t.Errorf("verify IP: %v", err)
	}
	if _, err := leaf.Verify(x509VerifyOptions(ca, "other.test")); err == nil {
		t.Error("verified for a host not in the certificate")
	}
}

func x509VerifyOptions(ca *testenv.CA, host string) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: ca.Pool, DNSName: host}
}
