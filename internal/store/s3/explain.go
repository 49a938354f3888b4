package s3

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
)

// Hints describe one side of a job for [Explain]: what a message names and
// which flags it points to.
type Hints struct {
	// Role is "source" or "destination".
	Role string
	// Flag is the prefix of the side's flags: "--src" or "--dst".
	Flag string
	// Endpoint is the custom endpoint, "" for AWS.
	Endpoint string
	// Bucket is the bucket's name.
	Bucket string
	// Region is the region requests were signed for; RegionExplicit says
	// whether the user gave it (a flag or a remote's region).
	Region         string
	RegionExplicit bool
	// Credentials says where the credentials came from, never their value
	// ([Store.CredentialSource]); "" when unknown.
	Credentials string
	// CredentialsErr is why no credentials could be had, or nil.
	CredentialsErr error
}

// Explain returns one line that says what err, an error of a request on
// the side h describes, means and what to do about it; "" when err is none
// of the kinds it knows: a wrong region, an endpoint that cannot be reached
// (refused, DNS, timeout), TLS trouble, credentials refused, a policy
// denying the request, no credentials at all.
func Explain(err error, h Hints) string {
	if err == nil || errors.Is(err, context.Canceled) {
		return ""
	}
	var se *v4.SigningError
	var re *awshttp.ResponseError
	if h.CredentialsErr != nil && !errors.As(err, &re) || errors.As(err, &se) {
		why := h.CredentialsErr
		if why == nil {
			why = se.Err
		}
		return fmt.Sprintf("no %s credentials (%s): name them with %s-profile or %s-secret, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
			h.Role, strings.TrimPrefix(oneLine(why.Error()), "failed to refresh cached credentials, "), h.Flag, h.Flag)
	}
	if msg := explainNetwork(err, h); msg != "" {
		return msg
	}
	if r := BucketRegion(err); r != "" && h.Region != "" && r != h.Region {
		if h.RegionExplicit {
			return fmt.Sprintf("bucket s3://%s is in region %s, not %s: pass %s-region %s", h.Bucket, r, h.Region, h.Flag, r)
		}
		return fmt.Sprintf("bucket s3://%s is in region %s, but requests were signed for %s (from the AWS configuration): pass %s-region %s", h.Bucket, r, h.Region, h.Flag, r)
	}
	return explainAccess(err, h)
}

// explainNetwork explains an error of the connection itself: no HTTP
// response, or the wrong protocol at the other end.
func explainNetwork(err error, h Hints) string {
	ep := endpointOf(err, h)
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusBadRequest &&
		re.Response.ProtoMajor == 1 && re.Response.ProtoMinor == 0 && len(re.Response.Header) == 0 {
		// Go's TLS servers (MinIO among them) answer a plain-HTTP request
		// with a bare "HTTP/1.0 400", no headers: no S3 server does that.
		return fmt.Sprintf("%s endpoint %s expects TLS (it answered a plain-HTTP request with a bare 400 Bad Request): use https:// in %s-endpoint",
			h.Role, ep, h.Flag)
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return fmt.Sprintf("%s endpoint %s does not speak TLS (it answered in plain HTTP): check the port in %s-endpoint; a server without TLS needs http://, which ferry refuses unless the host is loopback or --allow-insecure-http is given",
			h.Role, ep, h.Flag)
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		issuer := ""
		if ua.Cert != nil {
			issuer = fmt.Sprintf(", issued by %q", ua.Cert.Issuer.String())
		}
		return fmt.Sprintf("%s endpoint %s presented a TLS certificate signed by an unknown authority%s: pass that CA's certificate with --ca-bundle FILE (or ca_bundle in the remote's configuration)",
			h.Role, ep, issuer)
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		return fmt.Sprintf("%s endpoint %s presented a TLS certificate that is not valid for %s (%s): use a host name the certificate names in %s-endpoint",
			h.Role, ep, he.Host, oneLine(he.Error()), h.Flag)
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		return fmt.Sprintf("%s endpoint %s presented an invalid TLS certificate (%s): renew it on the server; if it says expired, check this machine's clock too",
			h.Role, ep, oneLine(ci.Error()))
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return fmt.Sprintf("%s endpoint %s could not be reached (host %s not found in DNS): is %s-endpoint right?", h.Role, ep, dns.Name, h.Flag)
		}
		return fmt.Sprintf("%s endpoint %s could not be reached (DNS lookup of %s failed: %s): check this machine's DNS and network", h.Role, ep, dns.Name, dns.Err)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Sprintf("%s endpoint %s could not be reached (connection refused): is the server running, and is %s-endpoint right?", h.Role, ep, h.Flag)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Sprintf("%s endpoint %s did not answer in time (timeout): is the host up, and reachable through firewalls and proxies (HTTPS_PROXY)? Is %s-endpoint right?", h.Role, ep, h.Flag)
	}
	for _, e := range []struct {
		errno syscall.Errno
		what  string
	}{{syscall.ECONNRESET, "connection reset"}, {syscall.EHOSTUNREACH, "host unreachable"}, {syscall.ENETUNREACH, "network unreachable"}} {
		if errors.Is(err, e.errno) {
			return fmt.Sprintf("%s endpoint %s could not be reached (%s): check the network and %s-endpoint", h.Role, ep, e.what, h.Flag)
		}
	}
	return ""
}

// explainAccess explains a request refused for its credentials or by a
// policy.
func explainAccess(err error, h Hints) string {
	code := codeOf(err)
	from := ""
	if h.Credentials != "" {
		from = " (" + h.Credentials + ")"
	}
	switch code {
	case "InvalidAccessKeyId", "InvalidClientTokenId":
		return fmt.Sprintf("the %s server does not know the access key ID%s (%s): check that the key exists and is active there, or use other credentials (%s-profile, %s-secret)",
			h.Role, from, code, h.Flag, h.Flag)
	case "SignatureDoesNotMatch":
		return fmt.Sprintf("the %s server rejected the request signature (%s): the secret key does not belong to the access key ID%s; correct it (for a ferry secret: 'ferry secret set NAME')",
			h.Role, code, from)
	case "RequestTimeTooSkewed":
		return fmt.Sprintf("the %s server rejected the request time (%s): this machine's clock differs from the server's by more than 15 minutes; synchronize it (NTP)", h.Role, code)
	case "ExpiredToken", "TokenRefreshRequired", "InvalidToken":
		return fmt.Sprintf("the %s server rejected the session token%s (%s): it has expired or is invalid; refresh the credentials (for AWS SSO: aws sso login)", h.Role, from, code)
	}
	if MeaningOf(err) != Denied {
		return ""
	}
	op, action := "the request", ""
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		op = oe.OperationName
		action = iamAction[oe.OperationName]
	}
	needs := ""
	if action != "" {
		needs = ", which needs " + action + ","
	}
	return fmt.Sprintf("access denied (%s): %s on s3://%s%s was refused for the credentials%s: a policy does not allow it; 'ferry policy SRC DST' prints the policy a job needs",
		orDefault(code, "403"), op, h.Bucket, needs, from)
}

// iamAction is the IAM action an S3 operation needs.
var iamAction = map[string]string{
	"HeadBucket": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
	"HeadObject": "s3:GetObject", "GetObject": "s3:GetObject", "GetObjectTagging": "s3:GetObjectTagging",
	"PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
	"CompleteMultipartUpload": "s3:PutObject", "CopyObject": "s3:PutObject (and s3:GetObject on the source)",
	"UploadPartCopy": "s3:PutObject (and s3:GetObject on the source)", "PutObjectTagging": "s3:PutObjectTagging",
	"DeleteObject": "s3:DeleteObject", "AbortMultipartUpload": "s3:AbortMultipartUpload",
	"ListParts": "s3:ListMultipartUploadParts", "ListMultipartUploads": "s3:ListBucketMultipartUploads",
	"GetBucketLocation": "s3:GetBucketLocation", "CreateBucket": "s3:CreateBucket",
	"GetBucketPolicy": "s3:GetBucketPolicy", "PutBucketPolicy": "s3:PutBucketPolicy",
	"GetBucketVersioning": "s3:GetBucketVersioning", "PutBucketVersioning": "s3:PutBucketVersioning",
	"GetBucketEncryption": "s3:GetEncryptionConfiguration", "PutBucketEncryption": "s3:PutEncryptionConfiguration",
	"GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock", "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
	"GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration", "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
}

// endpointOf returns the scheme and host the failed request went to (its
// URL, when the error has one), else h.Endpoint, else "of AWS S3".
func endpointOf(err error, h Hints) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	if h.Endpoint != "" {
		return strings.TrimSuffix(h.Endpoint, "/")
	}
	return "(AWS S3, region " + h.Region + ")"
}

// CredentialSource says where the store's credentials come from, with the
// access key ID shortened to its first and last four characters (an access
// key ID is not a secret, and its ends tell keys apart during a rotation;
// the secret key and session token are never shown). It retrieves the
// credentials, from the provider's cache after the first request.
func (s *Store) CredentialSource(ctx context.Context) string {
	src, _ := s.credentialSource(ctx)
	return src
}

func (s *Store) credentialSource(ctx context.Context) (string, error) {
	c, err := s.client.Options().Credentials.Retrieve(ctx)
	if err != nil {
		return "", err
	}
	src := describeSource(c.Source, s.profile)
	if id := MaskKeyID(c.AccessKeyID); id != "" {
		src += ", access key ID " + id
	}
	return "credentials from " + src, nil
}

// describeSource names an SDK credentials provider in words.
func describeSource(source, profile string) string {
	if profile == "" {
		profile = os.Getenv("AWS_PROFILE")
	}
	if profile == "" {
		profile = "default"
	}
	switch {
	case source == config.CredentialsSourceName:
		return "the environment (AWS_ACCESS_KEY_ID)"
	case strings.HasPrefix(source, "SharedConfigCredentials"):
		file := strings.TrimSpace(strings.TrimPrefix(source, "SharedConfigCredentials:"))
		if file != "" {
			return fmt.Sprintf("profile %q in %s", profile, file)
		}
		return fmt.Sprintf("profile %q", profile)
	case source == credentials.StaticCredentialsName:
		return "static credentials"
	case strings.HasPrefix(source, "ferry secret "):
		return fmt.Sprintf("ferry secret %q", strings.TrimPrefix(source, "ferry secret "))
	case source == "EC2RoleProvider":
		return "the EC2 instance role (IMDS)"
	case source == "CredentialsEndpointProvider":
		return "the container credentials endpoint (ECS/EKS)"
	case source == "WebIdentityCredentials":
		return "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
	case source == "AssumeRoleProvider":
		return fmt.Sprintf("a role assumed by profile %q", profile)
	case source == "SSOProvider":
		return fmt.Sprintf("AWS SSO, profile %q", profile)
	case source == "ProcessProvider":
		return fmt.Sprintf("the credential_process of profile %q", profile)
	case source == "":
		return "the AWS credential chain"
	}
	return "the AWS credential chain (" + source + ")"
}

// MaskKeyID shortens an access key ID to its first and last four
// characters ("AKIA…XYZ1"); "" for an ID too short to shorten.
func MaskKeyID(id string) string {
	if len(id) < 12 {
		return ""
	}
	return id[:4] + "…" + id[len(id)-4:]
}

// Hints returns the hints of this store for [Explain], with its credential
// source.
func (s *Store) Hints(ctx context.Context, role string) Hints {
	flag := "--src"
	if role == "destination" {
		flag = "--dst"
	}
	creds, err := s.credentialSource(ctx)
	return Hints{
		Role: role, Flag: flag, Endpoint: s.endpoint, Bucket: s.bucket,
		Region: s.region, RegionExplicit: s.regionExplicit,
		Credentials: creds, CredentialsErr: err,
	}
}

// Explain is [Explain] with this store's hints.
func (s *Store) Explain(ctx context.Context, err error, role string) string {
	return Explain(err, s.Hints(ctx, role))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
