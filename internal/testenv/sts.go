package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Credentials are S3 credentials for a test.
type Credentials struct {
	AccessKey, SecretKey, SessionToken string
}

// RestrictedCredentials returns temporary credentials of the server's root
// user limited by the session policy policyJSON (an IAM policy document):
// MinIO's STS AssumeRole, signed with the root keys. Requests the policy
// does not allow are denied with AccessDenied.
func (m *MinIO) RestrictedCredentials(t testing.TB, policyJSON string) Credentials {
	t.Helper()
	form := url.Values{
		"Action":          {"AssumeRole"},
		"Version":         {"2011-06-15"},
		"DurationSeconds": {"3600"},
		"Policy":          {policyJSON},
	}
	body := form.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatalf("testenv: STS request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", m.Region, time.Now()); err != nil {
		t.Fatalf("testenv: sign STS request: %v", err)
	}
	client := m.httpClient()
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("testenv: STS AssumeRole: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: STS AssumeRole: %s %v: %s", resp.Status, err, b)
	}
	var out struct {
		Result struct {
			Credentials struct {
				AccessKeyID     string `xml:"AccessKeyId"`
				SecretAccessKey string `xml:"SecretAccessKey"`
				SessionToken    string `xml:"SessionToken"`
			} `xml:"Credentials"`
		} `xml:"AssumeRoleResult"`
	}
	if err := xml.Unmarshal(b, &out); err != nil {
		t.Fatalf("testenv: STS AssumeRole response: %v", err)
	}
	c := out.Result.Credentials
	if c.AccessKeyID == "" {
		t.Fatalf("testenv: STS AssumeRole: no credentials in %s", b)
	}
	return Credentials{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}
}

// String never shows the secret key or token.
func (c Credentials) String() string { return fmt.Sprintf("Credentials{%s, ...}", c.AccessKey) }
