package s3

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// explainBucket is the bucket the explain tests create.
const explainBucket = "explain"

// openFor opens a Store on bucket explainBucket at endpoint, with one
// attempt per request.
func openFor(t *testing.T, endpoint, region, ca string, creds aws.CredentialsProvider) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{
		Bucket: explainBucket, Prefix: "p", Endpoint: endpoint, Region: region, CABundle: ca,
		RetryMaxAttempts: 1, Credentials: creds,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func static(ak, sk string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(ak, sk, "")
}

// explainCheck runs CheckBucket on s and checks that it fails and that
// Explain, for the destination, gives want (every string in it).
func explainCheck(t *testing.T, ctx context.Context, s *Store, want ...string) {
	t.Helper()
	err := s.CheckBucket(ctx)
	if err == nil {
		t.Fatal("CheckBucket: no error")
	}
	msg := s.Explain(t.Context(), err, "destination")
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("Explain = %q\nwant it to contain %q\n(error: %v)", msg, w, err)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("Explain = %q: more than one line", msg)
	}
}

func TestExplainCredentials(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, explainBucket)

	t.Run("unknown key", func(t *testing.T) {
		s := openFor(t, m.Endpoint, "", "", static("NOSUCHKEY0123456789", m.SecretKey))
		explainCheck(t, t.Context(), s,
			"the destination server does not know the access key ID (credentials from static credentials, access key ID NOSU…6789) (InvalidAccessKeyId)",
			"--dst-profile, --dst-secret")
	})
	t.Run("wrong secret", func(t *testing.T) {
		s := openFor(t, m.Endpoint, "", "", static(m.AccessKey, "not-the-secret-key"))
		explainCheck(t, t.Context(), s, "rejected the request signature (SignatureDoesNotMatch)",
			"the secret key does not belong to the access key ID (credentials from static credentials, access key ID "+MaskKeyID(m.AccessKey)+")")
	})
	t.Run("policy denies", func(t *testing.T) {
		c := m.RestrictedCredentials(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::other/*"]}]}`)
		s := openFor(t, m.Endpoint, "", "", credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, c.SessionToken))
		explainCheck(t, t.Context(), s, "access denied (AccessDenied): HeadBucket on s3://explain, which needs s3:ListBucket, was refused for the credentials (credentials from static credentials",
			"'ferry policy SRC DST'")
	})
	t.Run("no credentials", func(t *testing.T) {
		none := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no EC2 IMDS role found")
		})
		s := openFor(t, m.Endpoint, "", "", none)
		explainCheck(t, t.Context(), s, "no destination credentials (no EC2 IMDS role found): name them with --dst-profile or --dst-secret")
	})
}

func TestCredentialSource(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	credFile, confFile := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"prof": m})
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_CONFIG_FILE", confFile)
	s, err := Open(t.Context(), Config{Bucket: explainBucket, Endpoint: m.Endpoint, Profile: "prof"})
	if err != nil {
		t.Fatal(err)
	}
	got := s.CredentialSource(t.Context())
	want := `credentials from profile "prof" in ` + credFile + ", access key ID " + MaskKeyID(m.AccessKey)
	if got != want {
		t.Errorf("CredentialSource = %q, want %q", got, want)
	}
	if strings.Contains(got, m.SecretKey) || MaskKeyID(m.AccessKey) == m.AccessKey {
		t.Error("the secret key, or the whole access key ID, is shown")
	}
}

func TestExplainRegion(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{Region: "eu-west-1"})
	m.CreateBucket(t, explainBucket)
	creds := static(m.AccessKey, m.SecretKey)

	t.Run("discovered", func(t *testing.T) {
		s := openFor(t, m.Endpoint, "", "", creds)
		if s.Region() != "eu-west-1" || !s.RegionDiscovered() {
			t.Fatalf("Region() = %q, discovered %v; want eu-west-1 from the server", s.Region(), s.RegionDiscovered())
		}
		if err := s.CheckBucket(t.Context()); err != nil {
			t.Fatalf("CheckBucket: %v", err)
		}
	})
	t.Run("explicit and wrong", func(t *testing.T) {
		s := openFor(t, m.Endpoint, "us-east-1", "", creds)
		if s.RegionDiscovered() {
			t.Error("an explicit region was replaced")
		}
		explainCheck(t, t.Context(), s, "bucket s3://explain is in region eu-west-1, not us-east-1: pass --dst-region eu-west-1")
	})
}

func TestExplainNetwork(t *testing.T) {
	plain := testenv.StartMinIO(t, testenv.MinIOOptions{})
	tlsm := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	creds := static("somekey0123456", "secret")

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		s := openFor(t, "http://"+addr, "", "", creds)
		explainCheck(t, t.Context(), s, "destination endpoint http://"+addr+" could not be reached (connection refused): is the server running, and is --dst-endpoint right?")
	})
	t.Run("DNS", func(t *testing.T) {
		s := openFor(t, "https://no-such-host.invalid:9000", "", "", creds)
		explainCheck(t, t.Context(), s, "destination endpoint https://no-such-host.invalid:9000 could not be reached (", "--dst-endpoint")
	})
	t.Run("timeout", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		// Accepts connections (the kernel's backlog) and never answers.
		s := openFor(t, "http://"+l.Addr().String(), "us-east-1", "", creds)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		explainCheck(t, ctx, s, "destination endpoint http://"+l.Addr().String()+" did not answer in time (timeout)")
	})
	t.Run("unknown CA", func(t *testing.T) {
		s := openFor(t, tlsm.Endpoint, "", "", creds)
		explainCheck(t, t.Context(), s, "destination endpoint "+tlsm.Endpoint+" presented a TLS certificate signed by an unknown authority",
			"pass that CA's certificate with --ca-bundle FILE")
	})
	t.Run("TLS to plain HTTP", func(t *testing.T) {
		ep := "https://" + strings.TrimPrefix(plain.Endpoint, "http://")
		s := openFor(t, ep, "", "", creds)
		explainCheck(t, t.Context(), s, "destination endpoint "+ep+" does not speak TLS (it answered in plain HTTP)")
	})
	t.Run("plain HTTP to TLS", func(t *testing.T) {
		ep := "http://" + strings.TrimPrefix(tlsm.Endpoint, "https://")
		s := openFor(t, ep, "", "", creds)
		explainCheck(t, t.Context(), s, "destination endpoint "+ep+" expects TLS", "use https:// in --dst-endpoint")
	})
}

func TestMaskKeyID(t *testing.T) {
	for id, want := range map[string]string{
		"AKIAIOSFODNN7EXAMPLE": "AKIA…MPLE",
		"short":                "",
		"":                     "",
	} {
		if got := MaskKeyID(id); got != want {
			t.Errorf("MaskKeyID(%q) = %q, want %q", id, got, want)
		}
	}
}
