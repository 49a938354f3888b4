package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferry-dev/ferry/internal/store"
)

// Defaults for the zero values of [Config].
const (
	DefaultMaxConns = 64
	// DefaultRetryMaxAttempts bounds the attempts of one request (see
	// patientRetryer): enough to get through half of them failing.
	DefaultRetryMaxAttempts = 20
	// DefaultRegion is the region of a custom endpoint without one.
	DefaultRegion = "us-east-1"
)

// maxKeyLen is S3's limit on the length of a key, prefix included.
const maxKeyLen = 1024

// Config locates an S3 bucket and prefix and says how to reach it. The zero
// value of every field but Bucket means its default.
type Config struct {
	// Bucket is the bucket's name (required).
	Bucket string
	// Prefix is the location's prefix within the bucket, a "directory":
	// a trailing "/" is added when missing. Keys are relative to it.
	Prefix string
	// Endpoint is the URL of an S3-compatible server
	// ("https://minio.example:9000"); "" resolves the endpoint as the AWS SDK
	// does (AWS S3, or endpoint_url / AWS_ENDPOINT_URL from the
	// environment or shared config).
	Endpoint string
	// Region signs requests; "" takes it from the environment or shared
	// config, else us-east-1 with a custom endpoint, else the bucket's
	// region as AWS reports it.
	Region string
	// Profile selects a shared config/credentials profile; "" is the default
	// (or AWS_PROFILE).
	Profile string
	// CABundle is a PEM file of CA certificates trusted in addition to the
	// system's.
	CABundle string
	// MaxConns is the size of the idle connection pool; 0 means
	// DefaultMaxConns.
	MaxConns int
	// RetryMaxAttempts is the number of attempts per request, the first
	// included; 0 means DefaultRetryMaxAttempts.
	RetryMaxAttempts int
	// Credentials, when set, replaces the AWS credential chain.
	Credentials aws.CredentialsProvider
	// OnRetry, when set, is called before each request the SDK's retryer
	// sends again, with the reason (RetryThrottled, RetryServerError,
	// RetryTimeout, RetryConnection, RetryOther). It is called from many
	// goroutines and must not block.
	OnRetry func(reason string)
	// Log receives an info line when the bucket's region, as the server
	// reports it, replaces the configured or default one; nil discards it.
	Log *slog.Logger
}

// Store is an S3 bucket and prefix. It implements [store.Store],
// [store.Multipart], [store.Copier] and [store.PartStater]; it is safe for
// concurrent use.
type Store struct {
	client   *s3.Client
	bucket   string
	prefix   string
	endpoint string // cfg.Endpoint or the resolved custom endpoint, "" for AWS
	region   string
	// regionExplicit: Config.Region was given; discovered: the server
	// named the region, which replaced the configured or default one.
	regionExplicit, regionDiscovered bool
	profile                          string
	creds                            aws.CredentialsProvider // cfg.Credentials (cached), nil for the default chain

	// copyPartThreshold is the largest object CopyFrom copies with one
	// CopyObject; copyPartSize, when not 0, overrides the part size above it.
	// Tests lower both.
	copyPartThreshold int64
	copyPartSize      int64
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Multipart  = (*Store)(nil)
	_ store.PartLister = (*Store)(nil)
	_ store.Copier     = (*Store)(nil)
	_ store.PartStater = (*Store)(nil)
)

// Open returns a Store for cfg. It loads the AWS configuration and, on AWS
// with no region configured, asks S3 for the bucket's region; it does not
// check that the bucket exists (see [Store.CheckBucket]).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("open s3: no bucket")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.RetryMaxAttempts <= 0 {
		cfg.RetryMaxAttempts = DefaultRetryMaxAttempts
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s := &Store{
		regionExplicit:    cfg.Region != "",
		bucket:            cfg.Bucket,
		prefix:            prefix,
		profile:           cfg.Profile,
		creds:             cfg.Credentials,
		copyPartThreshold: maxCopyObjectSize,
	}
	where := "s3://" + cfg.Bucket + "/" + prefix

	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if cfg.CABundle != "" {
		pemData, err := os.ReadFile(cfg.CABundle)
		if err != nil {
			return nil, fmt.Errorf("open %s: CA bundle: %w", where, err)
		}
		if !roots.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("open %s: CA bundle %s: no PEM certificates", where, cfg.CABundle)
		}
	}
	// A BuildableClient (not a plain http.Client) lets a ca_bundle in the
	// shared config add to our roots.
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = 10 * time.Second
			d.KeepAlive = 30 * time.Second
		}).
		WithTransportOptions(func(tr *http.Transport) {
			tr.Proxy = http.ProxyFromEnvironment
			tr.MaxIdleConns = cfg.MaxConns
			tr.MaxIdleConnsPerHost = cfg.MaxConns
			tr.IdleConnTimeout = 90 * time.Second
			tr.TLSHandshakeTimeout = 10 * time.Second
			tr.ResponseHeaderTimeout = 60 * time.Second
			tr.ExpectContinueTimeout = time.Second
			tr.ForceAttemptHTTP2 = false
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
		})

	retryer := func() aws.Retryer {
		std := retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = cfg.RetryMaxAttempts
			o.RateLimiter = ratelimit.None
			o.Retryables = append([]retry.IsErrorRetryable{retryableCutBody{}}, o.Retryables...)
		})
		return patientRetryer{RetryerV2: std, onRetry: cfg.OnRetry}
	}
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(retryer),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("open %s: load AWS config: %w", where, err)
	}

	if cfg.Credentials != nil {
		// The cache LoadDefaultConfig wrapped it in: cheap to compare.
		s.creds = awsCfg.Credentials
	}
	s.endpoint = cfg.Endpoint
	if s.endpoint == "" && awsCfg.BaseEndpoint != nil {
		s.endpoint = *awsCfg.BaseEndpoint
	}
	s.region = awsCfg.Region
	if s.region == "" && s.endpoint != "" {
		s.region = DefaultRegion
	}
	limKey := s.endpoint
	if limKey == "" {
		limKey = "s3." + s.region
	}
	lim := EndpointLimiter(limKey)
	newClient := func(region string) *s3.Client {
		return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			o.HTTPClient = &limitedClient{next: o.HTTPClient, lim: lim}
			// Appended to a copy: o.APIOptions may share its array with
			// the AWS config and the other client.
			o.APIOptions = append(o.APIOptions[:len(o.APIOptions):len(o.APIOptions)], trimStack, useFastDecoders)
			if r, ok := o.Retryer.(aws.RetryerV2); ok {
				o.Retryer = failFastRetryer{RetryerV2: r, h: &lim.health}
			}
			o.Region = region
			if s.endpoint != "" {
				o.BaseEndpoint = aws.String(s.endpoint)
				o.UsePathStyle = true
				// The SDK's endpoint rules, run once per bucket and
				// region instead of twice per request (endpoint.go).
				next := o.EndpointResolverV2
				if next == nil {
					next = s3.NewDefaultEndpointResolverV2()
				}
				o.EndpointResolverV2 = newMemoResolver(next)
			}
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			o.DisableLogOutputChecksumValidationSkipped = true
		})
	}
	configured := s.region
	if s.region == "" {
		s.region = DefaultRegion
	}
	s.client = newClient(s.region)
	if !s.regionExplicit {
		// The region came from the AWS configuration or a default: ask the
		// server, which names the bucket's region even when it refuses a
		// request signed for another one.
		if r := discoverRegion(ctx, s.client, cfg.Bucket); r != "" && r != s.region {
			log := cfg.Log
			if log == nil {
				log = slog.New(slog.DiscardHandler)
			}
			from := "the default " + s.region
			if configured != "" {
				from = configured + " from the AWS configuration"
			}
			log.Info(fmt.Sprintf("bucket s3://%s is in region %s (the server says so), not %s: using %s", cfg.Bucket, r, from, r),
				"bucket", cfg.Bucket, "region", r)
			s.region, s.regionDiscovered = r, true
			s.client = newClient(r)
		}
	}
	return s, nil
}

// discoverRegion asks the server for bucket's region with one HeadBucket:
// S3 and MinIO name it in x-amz-bucket-region, also when they answer 301,
// 400 or 403 to a request signed for another region. It returns "" when
// the answer names none (or there was no answer).
func discoverRegion(ctx context.Context, c *s3.Client, bucket string) string {
	out, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}, func(o *s3.Options) {
		o.RetryMaxAttempts = 1
	})
	if err == nil {
		return aws.ToString(out.BucketRegion)
	}
	return BucketRegion(err)
}

// RegionDiscovered reports whether the region the Store signs for is the
// one the server named, in place of a configured or default one.
func (s *Store) RegionDiscovered() bool { return s.regionDiscovered }

// Endpoint returns the custom endpoint URL, or "" for AWS S3.
func (s *Store) Endpoint() string { return s.endpoint }

// Region returns the region requests are signed for.
func (s *Store) Region() string { return s.region }

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// Prefix returns the location's prefix: "" or ending in "/".
func (s *Store) Prefix() string { return s.prefix }

// String returns "s3://bucket/prefix".
func (s *Store) String() string { return "s3://" + s.bucket + "/" + s.prefix }

// Client returns the underlying SDK client, for tests and tools that need an
// operation the Store API lacks.
func (s *Store) Client() *s3.Client { return s.client }

func (s *Store) url(key string) string { return "s3://" + s.bucket + "/" + s.prefix + key }

// fullKey returns the bucket key of key, or an error wrapping
// store.ErrInvalidKey.
func (s *Store) fullKey(op, key string) (string, error) {
	full := s.prefix + key
	switch {
	case key == "":
		return "", &Error{Op: op, URL: s.url(key), Class: store.ErrInvalidKey, Err: errors.New("empty key")}
	case !utf8.ValidString(key):
		return "", &Error{Op: op, URL: s.url(strconv.Quote(key)), Class: store.ErrInvalidKey, Err: errors.New("key is not valid UTF-8")}
	case len(full) > maxKeyLen:
		return "", &Error{Op: op, URL: s.url(key[:64] + "..."), Class: store.ErrInvalidKey,
			Err: fmt.Errorf("key is %d bytes long, more than %d", len(full), maxKeyLen)}
	}
	return full, nil
}

// CheckBucket checks that the bucket exists and the credentials may use it.
// The error wraps store.ErrBucketNotExist or store.ErrAccess when those are
// the cause.
//
// A policy that scopes s3:ListBucket to the prefix (an s3:prefix condition,
// as `ferry policy` writes) denies HeadBucket, which has no prefix; a listing
// of one key under the prefix then proves the same. When that listing is
// refused too, its error (which states a code) is returned.
func (s *Store) CheckBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	err = wrap("check bucket", "s3://"+s.bucket, bucketOp, err)
	if errors.Is(err, store.ErrAccess) {
		_, lerr := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1),
		})
		if lerr == nil {
			return nil
		}
		// A HEAD answer has no body, so a 403 says nothing of why (AWS;
		// MinIO adds a header); the listing's error document does.
		if c := Code(lerr); codeOf(err) == "Forbidden" && c != "" && c != "Forbidden" {
			return wrap("check bucket", "s3://"+s.bucket, bucketOp, lerr)
		}
	}
	return err
}

// Stat returns the attributes of key (a HeadObject, asking for checksums).
func (s *Store) Stat(ctx context.Context, key string) (store.Attrs, error) {
	full, err := s.fullKey("stat", key)
	if err != nil {
		return store.Attrs{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(s.bucket),
		Key:          aws.String(full),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return store.Attrs{}, wrap("stat", s.url(key), objectOp, err)
	}
	a := store.Attrs{
		Object: store.Object{
			Key:          key,
			Size:         aws.ToInt64(out.ContentLength),
			ETag:         unquote(aws.ToString(out.ETag)),
			LastModified: aws.ToTime(out.LastModified),
		},
		ContentType:        aws.ToString(out.ContentType),
		ContentEncoding:    aws.ToString(out.ContentEncoding),
		ContentDisposition: aws.ToString(out.ContentDisposition),
		ContentLanguage:    aws.ToString(out.ContentLanguage),
		CacheControl:       aws.ToString(out.CacheControl),
		Expires:            aws.ToString(out.ExpiresString),
		Metadata:           lowerKeys(out.Metadata),
		TagCount:           int(aws.ToInt32(out.TagCount)),
		ChecksumCRC32C:     fullObjectCRC32C(aws.ToString(out.ChecksumCRC32C), out.ChecksumType),
		ChecksumCRC64NVME:  fullObjectCRC32C(aws.ToString(out.ChecksumCRC64NVME), out.ChecksumType),
		ChecksumCRC32:      fullObjectCRC32C(aws.ToString(out.ChecksumCRC32), out.ChecksumType),
		ChecksumSHA256:     fullObjectCRC32C(aws.ToString(out.ChecksumSHA256), out.ChecksumType),
		ChecksumSHA1:       fullObjectCRC32C(aws.ToString(out.ChecksumSHA1), out.ChecksumType),
		VersionID:          aws.ToString(out.VersionId),
		SSE:                string(out.ServerSideEncryption),
		StorageClass:       string(out.StorageClass),
	}
	return a, nil
}

// StatPart returns part n of key as it was uploaded: a HeadObject with
// partNumber (asking for checksums), whose Content-Range locates the part
// and whose x-amz-mp-parts-count gives the number of parts. For an object
// not uploaded in parts, part 1 is the whole object and Count is 0.
func (s *Store) StatPart(ctx context.Context, key string, n int32) (store.PartAttrs, error) {
	full, err := s.fullKey("stat part", key)
	if err != nil {
		return store.PartAttrs{}, err
	}
	if n < 1 {
		return store.PartAttrs{}, fmt.Errorf("stat part %s: part number %d < 1", s.url(key), n)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(s.bucket),
		Key:          aws.String(full),
		PartNumber:   aws.Int32(n),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return store.PartAttrs{}, wrap(fmt.Sprintf("stat part %d", n), s.url(key), objectOp, err)
	}
	size := aws.ToInt64(out.ContentLength)
	p := store.PartAttrs{
		Number: n,
		Size:   size,
		Count:  aws.ToInt32(out.PartsCount),
		Object: store.Object{
			Key:          key,
			Size:         size,
			ETag:         unquote(aws.ToString(out.ETag)),
			LastModified: aws.ToTime(out.LastModified),
		},
		// A part's own checksums; a composite "xxx-N" is not one.
		ChecksumCRC64NVME: partChecksum(aws.ToString(out.ChecksumCRC64NVME)),
		ChecksumCRC32C:    partChecksum(aws.ToString(out.ChecksumCRC32C)),
		ChecksumCRC32:     partChecksum(aws.ToString(out.ChecksumCRC32)),
		ChecksumSHA256:    partChecksum(aws.ToString(out.ChecksumSHA256)),
		ChecksumSHA1:      partChecksum(aws.ToString(out.ChecksumSHA1)),
	}
	if cr := aws.ToString(out.ContentRange); cr != "" {
		first, total, ok := parseContentRange(cr)
		if !ok {
			return store.PartAttrs{}, fmt.Errorf("stat part %d %s: malformed Content-Range %q", n, s.url(key), cr)
		}
		p.Offset, p.Object.Size = first, total
	}
	return p, nil
}

// parseContentRange parses "bytes FIRST-LAST/TOTAL".
func parseContentRange(cr string) (first, total int64, ok bool) {
	rest, found := strings.CutPrefix(cr, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	f, l, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	var err1, err2, err3 error
	first, err1 = strconv.ParseInt(f, 10, 64)
	last, err2 := strconv.ParseInt(l, 10, 64)
	total, err3 = strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || total <= last {
		return 0, 0, false
	}
	return first, total, true
}

func partChecksum(sum string) string {
	if strings.Contains(sum, "-") {
		return ""
	}
	return sum
}

// Open reads length bytes of key from offset (length < 0: to the end) with a
// ranged GetObject. The Attrs describe the whole object.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, store.Attrs, error) {
	full, err := s.fullKey("open", key)
	if err != nil {
		return nil, store.Attrs{}, err
	}
	if offset < 0 {
		return nil, store.Attrs{}, fmt.Errorf("open %s: negative offset %d", s.url(key), offset)
	}
	if length == 0 {
		a, err := s.Stat(ctx, key)
		if err != nil {
			return nil, store.Attrs{}, err
		}
		return io.NopCloser(strings.NewReader("")), a, nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	default:
		// A whole-object GET states the object's checksums (S3 drops
		// them on ranged GETs). The SDK then checks the body against a
		// full-object one as well; see checkedBody.
		in.ChecksumMode = types.ChecksumModeEnabled
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if code := errorCode(err); code == "InvalidRange" {
			// Reading from the end (offset == size) is an empty read, not
			// an error; S3 answers 416 for it.
			if a, serr := s.Stat(ctx, key); serr == nil && offset >= a.Size {
				return io.NopCloser(strings.NewReader("")), a, nil
			}
		}
		return nil, store.Attrs{}, wrap("open", s.url(key), objectOp, err)
	}
	size := aws.ToInt64(out.ContentLength)
	if cr := aws.ToString(out.ContentRange); cr != "" {
		// "bytes 0-99/1234"
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				size = n
			}
		}
	}
	a := store.Attrs{
		Object: store.Object{
			Key:          key,
			Size:         size,
			ETag:         unquote(aws.ToString(out.ETag)),
			LastModified: aws.ToTime(out.LastModified),
		},
		ContentType:        aws.ToString(out.ContentType),
		ContentEncoding:    aws.ToString(out.ContentEncoding),
		ContentDisposition: aws.ToString(out.ContentDisposition),
		ContentLanguage:    aws.ToString(out.ContentLanguage),
		CacheControl:       aws.ToString(out.CacheControl),
		Expires:            aws.ToString(out.ExpiresString),
		Metadata:           lowerKeys(out.Metadata),
		TagCount:           int(aws.ToInt32(out.TagCount)),
		ChecksumCRC32C:     fullObjectCRC32C(aws.ToString(out.ChecksumCRC32C), out.ChecksumType),
		ChecksumCRC64NVME:  fullObjectCRC32C(aws.ToString(out.ChecksumCRC64NVME), out.ChecksumType),
		ChecksumCRC32:      fullObjectCRC32C(aws.ToString(out.ChecksumCRC32), out.ChecksumType),
		ChecksumSHA256:     fullObjectCRC32C(aws.ToString(out.ChecksumSHA256), out.ChecksumType),
		ChecksumSHA1:       fullObjectCRC32C(aws.ToString(out.ChecksumSHA1), out.ChecksumType),
		VersionID:          aws.ToString(out.VersionId),
		SSE:                string(out.ServerSideEncryption),
		StorageClass:       string(out.StorageClass),
	}
	return &checkedBody{ReadCloser: out.Body, s: s, key: key}, a, nil
}

// checkedBody classifies the error with which the SDK fails the last read
// of a body that does not match the checksum the response stated
// (ChecksumMode ENABLED) as store.ErrChecksum. The SDK's error type is
// internal, so it is recognised by its message.
type checkedBody struct {
	io.ReadCloser
	s   *Store
	key string // the URL in an error is made only then
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && strings.Contains(err.Error(), "checksum did not match") {
		err = &Error{Op: "read", URL: b.s.url(b.key), Class: store.ErrChecksum, Err: err}
	}
	return n, err
}

// Put writes in.Key from body with one PutObject. The payload is sent
// unsigned with its CRC32C and MD5 (when given) as headers the server checks;
// a non-seekable body is not retried by the SDK.
func (s *Store) Put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	full, err := s.fullKey("put", in.Key)
	if err != nil {
		return store.PutResult{}, err
	}
	if in.Size == 0 {
		body = http.NoBody
	}
	tagging := encodeTags(in.Tags)
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(full),
		Body:                 body,
		ContentLength:        aws.Int64(in.Size),
		ContentType:          optional(in.ContentType),
		ContentEncoding:      optional(in.ContentEncoding),
		ContentDisposition:   optional(in.ContentDisposition),
		ContentLanguage:      optional(in.ContentLanguage),
		CacheControl:         optional(in.CacheControl),
		Metadata:             userMetadata(in.Metadata),
		Tagging:              optional(tagging),
		ChecksumCRC32C:       optional(in.ChecksumCRC32C),
		ContentMD5:           optional(in.ContentMD5),
		ServerSideEncryption: types.ServerSideEncryption(in.SSE),
		SSEKMSKeyId:          optional(in.SSEKMSKeyID),
		StorageClass:         types.StorageClass(in.StorageClass),
	}, unsignedPayload, withExpires(in.Expires))
	if err != nil {
		return store.PutResult{}, wrap("put", s.url(in.Key), objectOp, err)
	}
	return store.PutResult{
		ETag:           unquote(aws.ToString(out.ETag)),
		VersionID:      aws.ToString(out.VersionId),
		ChecksumCRC32C: aws.ToString(out.ChecksumCRC32C),
	}, nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	full, err := s.fullKey("delete", key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	err = wrap("delete", s.url(key), objectOp, err)
	if errors.Is(err, store.ErrNotExist) {
		return nil
	}
	return err
}

// Tags returns the tags of key (GetObjectTagging).
func (s *Store) Tags(ctx context.Context, key string) (map[string]string, error) {
	full, err := s.fullKey("tags", key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	if err != nil {
		return nil, wrap("tags", s.url(key), objectOp, err)
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}

// Close releases the Store's idle connections. The Store stays usable.
func (s *Store) Close() error {
	if c, ok := s.client.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}

// unsignedPayload sends the body as UNSIGNED-PAYLOAD instead of hashing it
// with SHA-256 first (which needs a seekable body and reads it twice).
// Integrity comes from the checksum headers.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// withExpires sets the Expires header to the raw string, byte for byte (the
// SDK's field is a time.Time).
func withExpires(expires string) func(*s3.Options) {
	return func(o *s3.Options) {
		if expires != "" {
			o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue("Expires", expires))
		}
	}
}

// encodeTags encodes tags as S3's Tagging header: a URL query string.
func encodeTags(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	v := make(url.Values, len(tags))
	for k, val := range tags {
		v.Set(k, val)
	}
	return v.Encode()
}

// optional returns a pointer to a copy of s, or nil for "". (Returning &s
// itself would move s to the heap on every call, "" included.)
func optional(s string) *string {
	if s == "" {
		return nil
	}
	v := s
	return &v
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }

// fullObjectCRC32C returns crc (a CRC32C or any other checksum) unless it is
// a composite (checksum of part checksums, "xxx-N"), which is no checksum of
// the object's bytes.
func fullObjectCRC32C(crc string, typ types.ChecksumType) string {
	if typ == types.ChecksumTypeComposite || strings.Contains(crc, "-") {
		return ""
	}
	return crc
}

// userMetadata returns md without the entries whose value is empty: ferry
// never sends an empty x-amz-meta-* header, which some servers drop
// (SeaweedFS) and others keep, so what a later Stat returns does not depend
// on the server. Readers take a missing key for an empty value.
func userMetadata(md map[string]string) map[string]string {
	var out map[string]string
	for k, v := range md {
		if v != "" {
			continue
		}
		if out == nil {
			out = maps.Clone(md)
		}
		delete(out, k)
	}
	if out == nil {
		return md
	}
	return out
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

func errorCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
