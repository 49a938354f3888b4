package s3

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// answerClient is an S3 client whose every request is answered, without
// a connection, with status, header and body; fast says whether it
// decodes answers on the fast path (as ferry's client does) or with the
// SDK's decoders alone.
func answerClient(status int, header http.Header, body []byte, fast bool) *s3.Client {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	return s3.New(s3.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String("http://127.0.0.1:1"),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:       directClient{h},
		RetryMaxAttempts: 1,
	}, func(o *s3.Options) {
		if fast {
			o.APIOptions = append(o.APIOptions, useFastDecoders)
		}
	})
}

// sdkList lists through answerClient.
func sdkList(status int, body []byte, fast bool) (*s3.ListObjectsV2Output, error) {
	out, err := answerClient(status, nil, body, fast).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("b")})
	if out != nil {
		out.ResultMetadata = middleware.Metadata{}
	}
	return out, err
}

// sdkCopy copies through answerClient.
func sdkCopy(status int, header http.Header, body []byte, fast bool) (*s3.CopyObjectOutput, error) {
	out, err := answerClient(status, header, body, fast).CopyObject(context.Background(), &s3.CopyObjectInput{
		Bucket: aws.String("b"), Key: aws.String("k"), CopySource: aws.String("b/src"),
	})
	if out != nil {
		out.ResultMetadata = middleware.Metadata{}
	}
	return out, err
}

// seededRand is the random source of a randomized test: seeded from the
// clock, or from FERRY_LISTDECODE_SEED to replay a run (the seed is
// logged); stream tells the tests' sequences apart.
func seededRand(t *testing.T, stream uint64) *rand.Rand {
	t.Helper()
	seed := time.Now().UnixNano()
	if v := os.Getenv("FERRY_LISTDECODE_SEED"); v != "" {
		seed, _ = strconv.ParseInt(v, 10, 64)
	}
	t.Logf("seed %d (FERRY_LISTDECODE_SEED=%d reproduces this run)", seed, seed)
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// TestListDecodeSameAsSDK: every ListObjectsV2 page the fast path decodes
// comes out exactly as the SDK's decoder makes it, and the pages servers
// send (random ones: keys with every kind of character, entities,
// character references, CR LF, empty and self-closing elements, names in
// any case, unknown elements, indentation) are all decoded on the fast
// path. Damaged pages (bytes cut, inserted, repeated) are either declined,
// and left to the SDK, or decoded as the SDK decodes them.
func TestListDecodeSameAsSDK(t *testing.T) {
	rng := seededRand(t, 2)

	var accepted, declined, sdkAccepted int
	for i := range 400 {
		page := randomPage(rng)
		want, err := sdkList(200, page, false)
		if err != nil {
			t.Fatalf("page %d: the SDK fails it (%v): a generator bug\n%s", i, err, page)
		}
		got, err := decodeListV2(page)
		if err != nil {
			t.Fatalf("page %d: declined (%v)\n%s", i, err, page)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("page %d decodes differently:\n%s\n%s", i, diff(got, want), page)
		}
		for j := range 25 {
			bad := damage(rng, page)
			got, ferr := decodeListV2(bad)
			want, serr := sdkList(200, bad, false)
			if serr == nil {
				sdkAccepted++
			}
			if ferr != nil {
				if !errors.Is(ferr, errDecline) {
					t.Fatalf("page %d damage %d: error %v does not wrap errDecline", i, j, ferr)
				}
				declined++
				continue
			}
			accepted++
			if serr != nil {
				t.Fatalf("page %d damage %d: the fast path decodes what the SDK fails (%v)\n%q", i, j, serr, bad)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("page %d damage %d decodes differently:\n%s\n%q", i, j, diff(got, want), bad)
			}
		}
	}
	t.Logf("damaged pages: %d decoded on the fast path as the SDK does, %d declined (the SDK decodes %d of all)", accepted, declined, sdkAccepted)
	if accepted < 500 || declined < 500 {
		t.Errorf("damaged pages: %d accepted, %d declined: the damage does not test both ways", accepted, declined)
	}
}

// dump shows an output with every pointer followed, a line per field.
func dump(o any) string {
	var b strings.Builder
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if v.IsNil() {
				fmt.Fprintf(&b, "%s: nil\n", path)
				return
			}
			walk(path, v.Elem())
		case reflect.Struct:
			if t, ok := v.Interface().(time.Time); ok {
				fmt.Fprintf(&b, "%s: %s\n", path, t.Format(time.RFC3339Nano))
				return
			}
			for i := range v.NumField() {
				if f := v.Type().Field(i); f.IsExported() && f.Name != "ResultMetadata" {
					walk(path+"."+f.Name, v.Field(i))
				}
			}
		case reflect.Slice:
			if v.IsNil() {
				fmt.Fprintf(&b, "%s: nil slice\n", path)
				return
			}
			for i := range v.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i))
			}
		default:
			fmt.Fprintf(&b, "%s: %q\n", path, fmt.Sprint(v.Interface()))
		}
	}
	walk("out", reflect.ValueOf(o))
	return b.String()
}

// diff is the first line where dumps a and b differ.
func diff(a, b any) string {
	la, lb := strings.Split(dump(a), "\n"), strings.Split(dump(b), "\n")
	for i := range max(len(la), len(lb)) {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("fast %s\nsdk  %s", x, y)
		}
	}
	return "(dumps equal)"
}

// randomPage is a ListObjectsV2 answer as a server might send it.
func randomPage(rng *rand.Rand) []byte {
	var b strings.Builder
	ws := func() string {
		if rng.IntN(3) > 0 {
			return ""
		}
		return []string{"\n", "\n  ", "\r\n\t", " "}[rng.IntN(4)]
	}
	name := func(n string) string { // the SDK matches names in any case
		switch rng.IntN(8) {
		case 0:
			return strings.ToLower(n)
		case 1:
			return strings.ToUpper(n)
		}
		return n
	}
	leaf := func(n, v string) {
		n = name(n)
		if v == "" && rng.IntN(2) == 0 {
			b.WriteString(ws() + "<" + n + "/>")
			return
		}
		b.WriteString(ws() + "<" + n + ">" + v + "</" + n + ">")
	}
	unknown := func() {
		switch rng.IntN(3) {
		case 0:
			leaf("Unknown", escText(rng, randText(rng)))
		case 1:
			b.WriteString("<Nested><A>1</A><B/><C><D>x &amp; y</D></C></Nested>")
		default:
			b.WriteString("<Empty/>")
		}
	}
	switch rng.IntN(4) {
	case 0:
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	case 1:
		b.WriteString(`<?xml version="1.0"?>`)
	}
	root := "ListBucketResult"
	if rng.IntN(4) == 0 {
		b.WriteString("<" + root + ">")
	} else {
		b.WriteString(`<` + root + ` xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
	}
	top := []func(){
		func() { leaf("Name", escText(rng, "bucket-"+strconv.Itoa(rng.IntN(100)))) },
		func() { leaf("Prefix", escText(rng, randText(rng))) },
		func() { leaf("StartAfter", escText(rng, randText(rng))) },
		func() { leaf("ContinuationToken", escText(rng, randText(rng))) },
		func() { leaf("NextContinuationToken", escText(rng, randText(rng))) },
		func() { leaf("KeyCount", strconv.Itoa(rng.IntN(1001))) },
		func() { leaf("MaxKeys", strconv.Itoa(rng.IntN(1001))) },
		func() { leaf("Delimiter", escText(rng, []string{"/", "", "-", "&"}[rng.IntN(4)])) },
		func() { leaf("EncodingType", []string{"url", "URL", ""}[rng.IntN(3)]) },
		func() { leaf("IsTruncated", []string{"true", "false", "1", "0", "TRUE"}[rng.IntN(5)]) },
		unknown,
	}
	for range rng.IntN(12) {
		top[rng.IntN(len(top))]()
	}
	for range rng.IntN(15) {
		if rng.IntN(4) == 0 {
			cp := name("CommonPrefixes")
			b.WriteString(ws() + "<" + cp + ">")
			leaf("Prefix", escText(rng, randText(rng)+"/"))
			b.WriteString(ws() + "</" + cp + ">")
			continue
		}
		c := name("Contents")
		b.WriteString(ws() + "<" + c + ">")
		fields := []func(){
			func() { leaf("Key", escText(rng, randText(rng))) },
			func() {
				leaf("LastModified", time.Unix(rng.Int64N(2e9), rng.Int64N(1e9)).UTC().Format([]string{"2006-01-02T15:04:05.000Z", "2006-01-02T15:04:05Z", time.RFC3339Nano}[rng.IntN(3)]))
			},
			func() { leaf("ETag", escText(rng, `"`+strconv.FormatUint(rng.Uint64(), 16)+`"`)) },
			func() { leaf("Size", strconv.FormatInt(rng.Int64N(1<<40), 10)) },
			func() { leaf("StorageClass", []string{"STANDARD", "GLACIER", ""}[rng.IntN(3)]) },
			func() { leaf("ChecksumAlgorithm", []string{"CRC32C", "CRC64NVME", "SHA256"}[rng.IntN(3)]) },
			func() { leaf("ChecksumType", []string{"FULL_OBJECT", "COMPOSITE"}[rng.IntN(2)]) },
			func() {
				o := name("Owner")
				b.WriteString("<" + o + ">")
				if rng.IntN(2) == 0 {
					leaf("ID", strconv.FormatUint(rng.Uint64(), 16))
				}
				if rng.IntN(2) == 0 {
					leaf("DisplayName", escText(rng, randText(rng)))
				}
				b.WriteString(ws() + "</" + o + ">")
			},
			func() {
				r := name("RestoreStatus")
				b.WriteString("<" + r + ">")
				leaf("IsRestoreInProgress", []string{"true", "false"}[rng.IntN(2)])
				if rng.IntN(2) == 0 {
					leaf("RestoreExpiryDate", "2026-12-01T00:00:00Z")
				}
				b.WriteString("</" + r + ">")
			},
			unknown,
		}
		for range rng.IntN(10) {
			fields[rng.IntN(len(fields))]()
		}
		b.WriteString(ws() + "</" + c + ">")
	}
	b.WriteString(ws() + "</" + root + ">" + ws())
	return []byte(b.String())
}

// randText is a key-like string: ASCII, XML's special characters, URL
// escapes, CR and LF, tabs, and characters beyond ASCII.
func randText(rng *rand.Rand) string {
	parts := []string{"a", "Z", "0", "/", "-", " ", "%2F", "+", "<", ">", "&", `"`, "'", "\r\n", "\r", "\n", "\t",
		"ü", "日本", "😀", "\u00a0", "\ufffd", "]]", ";", "#", "=", "?"}
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	return b.String()
}

// escText writes s as XML character data, escaping '<' and '&' (and, at
// random, other characters as entities or character references).
func escText(rng *rand.Rand, s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString([]string{"&lt;", "&#60;", "&#x3c;"}[rng.IntN(3)])
		case r == '&':
			b.WriteString([]string{"&amp;", "&#38;"}[rng.IntN(2)])
		case r == '>' && (rng.IntN(2) == 0 || strings.HasSuffix(b.String(), "]]")): // "]]>" is not text
			b.WriteString("&gt;")
		case r == '"' && rng.IntN(2) == 0:
			b.WriteString([]string{"&quot;", "&#34;"}[rng.IntN(2)])
		case r == '\'' && rng.IntN(2) == 0:
			b.WriteString("&apos;")
		case r == '\r' && rng.IntN(3) == 0:
			b.WriteString("&#13;")
		case r > 0x7f && rng.IntN(3) == 0:
			fmt.Fprintf(&b, "&#x%x;", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// damage returns page with one random change: bytes cut, inserted or
// repeated, the end cut off, or a byte replaced.
func damage(rng *rand.Rand, page []byte) []byte {
	if len(page) == 0 {
		return []byte("<")
	}
	i := rng.IntN(len(page))
	j := min(len(page), i+1+rng.IntN(12))
	junk := []string{"<", ">", "/", "&", ";", "<!--x-->", "<![CDATA[x]]>", "&#0;", "&#xD800;", "&bogus;", "\x00", "\xff",
		"<a>", "</a>", "<a/>", " x=\"1\"", "<?pi?>", "]]>", "\r", "é", "&lt;", "<Key>k</Key>", "<Size>", "</Contents>"}
	out := append([]byte(nil), page[:i]...)
	switch rng.IntN(5) {
	case 0: // cut
		out = append(out, page[j:]...)
	case 1: // insert
		out = append(out, junk[rng.IntN(len(junk))]...)
		out = append(out, page[i:]...)
	case 2: // repeat
		out = append(out, page[i:j]...)
		out = append(out, page[i:]...)
	case 3: // end cut off
	default: // replace a byte
		out = append(out, junk[rng.IntN(len(junk))][0])
		out = append(out, page[i+1:]...)
	}
	return out
}

// TestCopyDecodeSameAsSDK: every CopyObject answer the fast path decodes
// (headers and CopyObjectResult) comes out exactly as the SDK makes it,
// the answers servers send are all decoded on the fast path, and damaged
// ones are declined or decoded as the SDK does; through a client, the
// result and error are the SDK's in every case.
func TestCopyDecodeSameAsSDK(t *testing.T) {
	rng := seededRand(t, 3)
	decode := fastDecoders["CopyObject"]
	var accepted, declined int
	check := func(i, j int, header http.Header, body []byte, mustAccept bool) {
		t.Helper()
		want, werr := sdkCopy(200, header, body, false)
		got, gerr := sdkCopy(200, header, body, true)
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Fatalf("answer %d/%d: error %v, want %v\n%q", i, j, gerr, werr, body)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("answer %d/%d decodes differently:\n%s\n%q", i, j, diff(got, want), body)
		}
		_, ferr := decode(&smithyhttp.Response{Response: &http.Response{Header: header}}, body)
		switch {
		case ferr == nil && werr != nil:
			t.Fatalf("answer %d/%d: the fast path decodes what the SDK fails (%v)\n%q", i, j, werr, body)
		case ferr == nil:
			accepted++
		case mustAccept:
			t.Fatalf("answer %d/%d: declined (%v)\n%q", i, j, ferr, body)
		case !errors.Is(ferr, errDecline):
			t.Fatalf("answer %d/%d: error %v does not wrap errDecline", i, j, ferr)
		default:
			declined++
		}
	}
	for i := range 300 {
		header, body := randomCopyAnswer(rng)
		check(i, -1, header, body, header.Get("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled") != "maybe")
		for j := range 10 {
			check(i, j, header, damage(rng, body), false)
		}
	}
	t.Logf("%d answers decoded on the fast path as the SDK does, %d declined", accepted, declined)
	if accepted < 400 || declined < 400 {
		t.Errorf("%d accepted, %d declined: the damage does not test both ways", accepted, declined)
	}
}

// randomCopyAnswer is a CopyObject answer as a server might send it: every
// field of the SDK's CopyObjectResult (found by reflection, so that a field
// a later SDK adds fails the test until the fast path reads it), in any
// order and case, and the headers the SDK reads.
func randomCopyAnswer(rng *rand.Rand) (http.Header, []byte) {
	header := http.Header{}
	for _, name := range []string{"X-Amz-Copy-Source-Version-Id", "X-Amz-Expiration", "X-Amz-Request-Charged",
		"X-Amz-Server-Side-Encryption", "X-Amz-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5", "X-Amz-Server-Side-Encryption-Context",
		"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "X-Amz-Version-Id"} {
		if rng.IntN(2) == 0 {
			header.Set(name, []string{"v" + strconv.Itoa(rng.IntN(100)), " padded ", "", "aws:kms"}[rng.IntN(4)])
		}
	}
	if rng.IntN(2) == 0 {
		header.Set("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled", []string{"true", "false", " TRUE ", "maybe"}[rng.IntN(4)])
	}
	var b strings.Builder
	if rng.IntN(2) == 0 {
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	}
	root := []string{"CopyObjectResult", "copyobjectresult", "Result"}[rng.IntN(3)]
	b.WriteString("<" + root + ` xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
	rt := reflect.TypeFor[types.CopyObjectResult]()
	for _, i := range rng.Perm(rt.NumField()) {
		f := rt.Field(i)
		if !f.IsExported() || rng.IntN(4) == 0 {
			continue
		}
		n := f.Name
		if rng.IntN(6) == 0 {
			n = strings.ToUpper(n)
		}
		var v string
		switch {
		case f.Type == reflect.TypeFor[*time.Time]():
			v = time.Unix(rng.Int64N(2e9), 0).UTC().Format("2006-01-02T15:04:05.000Z")
		case f.Type == reflect.TypeFor[types.ChecksumType]():
			v = []string{"FULL_OBJECT", "COMPOSITE"}[rng.IntN(2)]
		default:
			v = escText(rng, randText(rng))
		}
		b.WriteString("\n  <" + n + ">" + v + "</" + n + ">")
		if rng.IntN(8) == 0 {
			b.WriteString("<Unknown><X>1</X></Unknown>")
		}
	}
	b.WriteString("\n</" + root + ">")
	return header, []byte(b.String())
}

// TestFastDecodeErrors: through a client with the fast path, error answers,
// S3's error documents sent with status 200 (on CopyObject, ListObjectsV2
// and PutObject, whose check is skipped only for an empty answer), empty
// answers, pages the fast path declines and damaged ones give the SDK's own
// result and error (a damaged page: a DeserializationError, which ferry
// retries).
func TestFastDecodeErrors(t *testing.T) {
	errDoc := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>`)
	copyDoc := []byte(`<CopyObjectResult><ETag>"abc"</ETag><LastModified>2026-12-01T00:00:00.000Z</LastModified></CopyObjectResult>`)
	page := randomPage(rand.New(rand.NewPCG(1, 2)))
	for _, c := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"error with 200", 200, errDoc},
		{"error with 200, lower case", 200, []byte(`<error><Code>SlowDown</Code></error>`)},
		{"error", 403, []byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>`)},
		{"slow down", 503, []byte(`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)},
		{"empty", 200, nil},
		{"white space", 200, []byte(" \n")},
		{"result", 200, copyDoc},
		{"cut", 200, copyDoc[:30]},
		{"comment", 200, []byte(`<!-- c --><Error><Code>InternalError</Code></Error>`)},
		{"listing", 200, page},
		{"listing with a comment", 200, []byte(`<ListBucketResult><!-- c --><Name>b</Name><Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>`)},
		{"damaged listing", 200, []byte(`<ListBucketResult><Name>b</Name><Contents><Key>k</Key><Size>x</Size></Contents></ListBucketResult>`)},
		{"cut listing", 200, page[:len(page)/2]},
	} {
		t.Run(c.name, func(t *testing.T) {
			same := func(op string, got, want any, gerr, werr error) {
				t.Helper()
				if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
					t.Fatalf("%s: error %v, want %v", op, gerr, werr)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: output differs:\n%s", op, diff(got, want))
				}
			}
			g, gerr := sdkCopy(c.status, nil, c.body, true)
			w, werr := sdkCopy(c.status, nil, c.body, false)
			same("CopyObject", g, w, gerr, werr)
			gl, gerr := sdkList(c.status, c.body, true)
			wl, werr := sdkList(c.status, c.body, false)
			same("ListObjectsV2", gl, wl, gerr, werr)
			var de *smithy.DeserializationError
			if c.name == "damaged listing" && !errors.As(gerr, &de) {
				t.Errorf("damaged page: error %v, want a DeserializationError (retried by retryableCutBody)", gerr)
			}
			put := func(fast bool) (*s3.PutObjectOutput, error) {
				out, err := answerClient(c.status, nil, c.body, fast).PutObject(context.Background(), &s3.PutObjectInput{
					Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x"),
				})
				if out != nil {
					out.ResultMetadata = middleware.Metadata{}
				}
				return out, err
			}
			gp, gerr := put(true)
			wp, werr := put(false)
			same("PutObject", gp, wp, gerr, werr)
			if c.name == "error with 200" && (gerr == nil || !strings.Contains(gerr.Error(), "InternalError")) {
				t.Errorf("PutObject answered 200 with an error document: error %v, want InternalError", gerr)
			}
		})
	}
}

// TestFastDecodersKnowEveryField fails when the SDK's outputs gain a field
// the fast path does not fill: teach it the field (and the generators of
// the tests above), then update the list.
func TestFastDecodersKnowEveryField(t *testing.T) {
	for _, c := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[s3.ListObjectsV2Output](), "CommonPrefixes Contents ContinuationToken Delimiter EncodingType IsTruncated KeyCount MaxKeys Name NextContinuationToken Prefix RequestCharged StartAfter ResultMetadata"},
		{reflect.TypeFor[types.Object](), "ChecksumAlgorithm ChecksumType ETag Key LastModified Owner RestoreStatus Size StorageClass"},
		{reflect.TypeFor[types.Owner](), "DisplayName ID"},
		{reflect.TypeFor[types.RestoreStatus](), "IsRestoreInProgress RestoreExpiryDate"},
		{reflect.TypeFor[types.CommonPrefix](), "Prefix"},
		{reflect.TypeFor[s3.CopyObjectOutput](), "BucketKeyEnabled CopyObjectResult CopySourceVersionId Expiration RequestCharged SSECustomerAlgorithm SSECustomerKeyMD5 SSEKMSEncryptionContext SSEKMSKeyId ServerSideEncryption VersionId ResultMetadata"},
		{reflect.TypeFor[types.CopyObjectResult](), "ChecksumCRC32 ChecksumCRC32C ChecksumCRC64NVME ChecksumMD5 ChecksumSHA1 ChecksumSHA256 ChecksumSHA512 ChecksumType ChecksumXXHASH128 ChecksumXXHASH3 ChecksumXXHASH64 ETag LastModified"},
	} {
		var names []string
		for i := range c.t.NumField() {
			if f := c.t.Field(i); f.IsExported() {
				names = append(names, f.Name)
			}
		}
		if got := strings.Join(names, " "); got != c.want {
			t.Errorf("%s has fields\n  %s\nthe fast decoders know\n  %s", c.t, got, c.want)
		}
	}
}

// requireFastPath checks, when t ends, that since now the fast path
// decoded answers and declined none: the server's answers are read
// without the SDK's decoders.
func requireFastPath(t *testing.T) {
	t.Helper()
	decoded, declined := fastDecoded.Load(), fastDeclined.Load()
	t.Cleanup(func() {
		d, n := fastDecoded.Load()-decoded, fastDeclined.Load()-declined
		if d == 0 || n != 0 {
			t.Errorf("fast path: %d answers decoded, %d declined; want some, and none", d, n)
		}
	})
}
