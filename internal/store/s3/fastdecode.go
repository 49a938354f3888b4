package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Fast answer decoders.
//
// The SDK decodes S3's XML answers with encoding/xml's Decoder.Token, which
// allocates for every token: a listing page costs about 80 allocations and
// 13 µs of CPU per key, and a CopyObject answer about 30% of the SDK's
// whole cost of the request, its check for an error document sent with
// status 200 included (docs/performance.md). For ListObjectsV2 and
// CopyObject, ferry's client decodes the answers the usual servers send
// with xmlDoc (fastxml.go, on the gosax tokenizer) into the same outputs.
//
// It is a fast path, not a second decoder. An answer xmlDoc is not certain
// to read exactly as the SDK would is handed to the SDK's own decoders,
// which then decide, with their own results and errors; so are error
// answers (not 2xx), transport errors, a body that cannot be read whole,
// and a document whose root is Error (S3's error sent with status 200,
// which the SDK turns into a 500 and retries). TestListDecodeSameAsSDK and
// TestCopyDecodeSameAsSDK check, over random and damaged answers with a
// recorded seed, that every answer the fast path accepts comes out exactly
// as the SDK makes it.
//
// Every other operation with the SDK's status-200 error check
// (S3:ProcessResponseFor200Error: PutObject, CreateMultipartUpload, ...)
// skips it when the answer has no body, where it finds nothing to check
// but costs an XML decoder per request.

// fastDecodeLimit bounds the body the fast path reads into memory; a larger
// answer (a listing page is about 300 bytes per key, 1,000 keys at most)
// goes to the SDK's streaming decoders.
const fastDecodeLimit = 8 << 20

// fastDecoders are the fast decoders by operation: each returns the
// operation's output from the answer's headers and whole body, or an error
// wrapping errDecline.
var fastDecoders = map[string]func(h *smithyhttp.Response, body []byte) (any, error){
	"ListObjectsV2": func(resp *smithyhttp.Response, body []byte) (any, error) {
		o, err := decodeListV2(body)
		if err != nil {
			return nil, err
		}
		if v := resp.Header.Values("x-amz-request-charged"); len(v) != 0 {
			o.RequestCharged = types.RequestCharged(strings.TrimSpace(v[0]))
		}
		return o, nil
	},
	"CopyObject": func(resp *smithyhttp.Response, body []byte) (any, error) {
		o := &s3.CopyObjectOutput{}
		if err := copyHeaders(o, resp); err != nil {
			return nil, err
		}
		res, err := decodeCopyResult(body)
		if err != nil {
			return nil, err
		}
		o.CopyObjectResult = res
		return o, nil
	},
}

// The IDs of the SDK's middlewares the fast path stands in for.
const (
	opDeserializerID = "OperationDeserializer"
	error200ID       = "S3:ProcessResponseFor200Error"
)

// useFastDecoders is an API option of ferry's S3 client. On an operation
// with a fast decoder, it puts fastDeserializer in place of the SDK's
// decoder and of its status-200 error check, keeping both for what the
// fast path declines. On every other operation with that check, it skips
// the check for answers without a body.
func useFastDecoders(st *middleware.Stack) error {
	check, hasCheck := st.Deserialize.Get(error200ID)
	decode, ok := fastDecoders[st.ID()]
	if !ok {
		if hasCheck {
			if _, err := st.Deserialize.Swap(error200ID, skipEmpty200{check}); err != nil {
				return fmt.Errorf("wrap %s: %w", error200ID, err)
			}
		}
		return nil
	}
	sdk, ok := st.Deserialize.Get(opDeserializerID)
	if !ok {
		return nil // a later SDK changed its stack: keep its decoders
	}
	m := &fastDeserializer{sdk: sdk, decode: decode}
	if hasCheck {
		m.check = check
		if _, err := st.Deserialize.Swap(error200ID, passThrough{}); err != nil {
			return fmt.Errorf("replace %s: %w", error200ID, err)
		}
	}
	if _, err := st.Deserialize.Swap(opDeserializerID, m); err != nil {
		return fmt.Errorf("replace the %s decoder: %w", st.ID(), err)
	}
	return nil
}

// fastDeserializer is the OperationDeserializer of an operation with a
// fast decoder: see the comment at the top of this file.
type fastDeserializer struct {
	sdk    middleware.DeserializeMiddleware // the SDK's decoder
	check  middleware.DeserializeMiddleware // the SDK's status-200 error check, or nil
	decode func(*smithyhttp.Response, []byte) (any, error)
}

func (*fastDeserializer) ID() string { return opDeserializerID }

// fastDecoded and fastDeclined count the answers the fast path decoded
// and those it read but left to the SDK (tests check that the servers'
// answers take the fast path).
var fastDecoded, fastDeclined atomic.Int64

// answerBufs holds the buffers answers are read into.
var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (m *fastDeserializer) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 ||
		resp.ContentLength > fastDecodeLimit {
		return m.sdkDecode(ctx, in, out, md, err)
	}
	buf := answerBufs.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		answerBufs.Put(buf)
	}()
	orig := resp.Body
	_, rerr := buf.ReadFrom(io.LimitReader(orig, fastDecodeLimit+1))
	if rerr == nil && buf.Len() <= fastDecodeLimit {
		if result, derr := m.decode(resp, buf.Bytes()); derr == nil {
			smithyhttp.CloseResponseBody(ctx, resp, false, nil)
			out.Result = result
			fastDecoded.Add(1)
			return out, md, nil
		}
	}
	fastDeclined.Add(1)
	// The SDK decides: it reads what was read, then the rest of the body
	// (or the read error, which it reports as it would have), and closes
	// the body.
	rest := io.Reader(orig)
	if rerr != nil {
		rest = errReader{rerr}
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(buf.Bytes()), rest), orig}
	return m.sdkDecode(ctx, in, out, md, nil)
}

// sdkDecode runs the SDK's decoder, and its status-200 error check, on an
// answer already received.
func (m *fastDeserializer) sdkDecode(ctx context.Context, in middleware.DeserializeInput, out middleware.DeserializeOutput, md middleware.Metadata, err error) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	var rest middleware.DeserializeHandler = answered{out, md, err}
	if m.check != nil {
		rest = then{m.check, rest}
	}
	return m.sdk.HandleDeserialize(ctx, in, rest)
}

// skipEmpty200 is the SDK's status-200 error check, skipped for an answer
// without a body (Content-Length 0, for which net/http reads nothing):
// there is no document to be an error, and the check answers such an
// answer unchanged.
type skipEmpty200 struct {
	check middleware.DeserializeMiddleware
}

func (skipEmpty200) ID() string { return error200ID }

func (m skipEmpty200) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil && resp.ContentLength == 0 {
		return out, md, nil
	}
	return m.check.HandleDeserialize(ctx, in, answered{out, md, err})
}

// passThrough holds the place of the status-200 error check for
// fastDeserializer, which runs it itself when it declines an answer.
type passThrough struct{}

func (passThrough) ID() string { return error200ID }

func (passThrough) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	return next.HandleDeserialize(ctx, in)
}

// answered is the rest of a deserialize chain that has already run: it
// returns its result again.
type answered struct {
	out middleware.DeserializeOutput
	md  middleware.Metadata
	err error
}

func (a answered) HandleDeserialize(context.Context, middleware.DeserializeInput) (middleware.DeserializeOutput, middleware.Metadata, error) {
	return a.out, a.md, a.err
}

// then is middleware m in front of handler next.
type then struct {
	m    middleware.DeserializeMiddleware
	next middleware.DeserializeHandler
}

func (t then) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput) (middleware.DeserializeOutput, middleware.Metadata, error) {
	return t.m.HandleDeserialize(ctx, in, t.next)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

type readCloser struct {
	io.Reader
	io.Closer
}

// decodeListV2 decodes a ListObjectsV2 answer body as the SDK's decoder
// does, or returns an error wrapping errDecline.
func decodeListV2(body []byte) (*s3.ListObjectsV2Output, error) {
	o := &s3.ListObjectsV2Output{}
	err := readDocument(body, func(d *xmlDoc, root []byte) error {
		if fold(root, "Error") {
			return decline("an error document")
		}
		return d.listRoot(o, root)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// decodeCopyResult decodes a CopyObject answer body (its root is the
// CopyObjectResult, whatever its name) as the SDK's decoder does: nil for
// an answer without a document. Or it returns an error wrapping
// errDecline.
func decodeCopyResult(body []byte) (*types.CopyObjectResult, error) {
	var res *types.CopyObjectResult
	err := readDocument(body, func(d *xmlDoc, root []byte) error {
		if fold(root, "Error") {
			return decline("an error document")
		}
		res = &types.CopyObjectResult{}
		return d.children(root, func(name []byte) error {
			switch {
			case fold(name, "ChecksumCRC32"):
				return d.str(name, &res.ChecksumCRC32)
			case fold(name, "ChecksumCRC32C"):
				return d.str(name, &res.ChecksumCRC32C)
			case fold(name, "ChecksumCRC64NVME"):
				return d.str(name, &res.ChecksumCRC64NVME)
			case fold(name, "ChecksumMD5"):
				return d.str(name, &res.ChecksumMD5)
			case fold(name, "ChecksumSHA1"):
				return d.str(name, &res.ChecksumSHA1)
			case fold(name, "ChecksumSHA256"):
				return d.str(name, &res.ChecksumSHA256)
			case fold(name, "ChecksumSHA512"):
				return d.str(name, &res.ChecksumSHA512)
			case fold(name, "ChecksumType"):
				v, err := d.value(name)
				res.ChecksumType = types.ChecksumType(v)
				return err
			case fold(name, "ChecksumXXHASH128"):
				return d.str(name, &res.ChecksumXXHASH128)
			case fold(name, "ChecksumXXHASH3"):
				return d.str(name, &res.ChecksumXXHASH3)
			case fold(name, "ChecksumXXHASH64"):
				return d.str(name, &res.ChecksumXXHASH64)
			case fold(name, "ETag"):
				return d.str(name, &res.ETag)
			case fold(name, "LastModified"):
				return d.timestamp(name, &res.LastModified)
			}
			return d.skip(name)
		})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// copyHeaders sets the fields of o that CopyObject's answer carries in
// headers, as the SDK does.
func copyHeaders(o *s3.CopyObjectOutput, resp *smithyhttp.Response) error {
	h := func(name string) (string, bool) {
		v := resp.Header.Values(name)
		if len(v) == 0 {
			return "", false
		}
		return strings.TrimSpace(v[0]), true
	}
	if v, ok := h("x-amz-server-side-encryption-bucket-key-enabled"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return decline("bucket key header %q", v)
		}
		o.BucketKeyEnabled = &b
	}
	str := func(name string, p **string) {
		if v, ok := h(name); ok {
			*p = &v
		}
	}
	str("x-amz-copy-source-version-id", &o.CopySourceVersionId)
	str("x-amz-expiration", &o.Expiration)
	if v, ok := h("x-amz-request-charged"); ok {
		o.RequestCharged = types.RequestCharged(v)
	}
	if v, ok := h("x-amz-server-side-encryption"); ok {
		o.ServerSideEncryption = types.ServerSideEncryption(v)
	}
	str("x-amz-server-side-encryption-customer-algorithm", &o.SSECustomerAlgorithm)
	str("x-amz-server-side-encryption-customer-key-MD5", &o.SSECustomerKeyMD5)
	str("x-amz-server-side-encryption-context", &o.SSEKMSEncryptionContext)
	str("x-amz-server-side-encryption-aws-kms-key-id", &o.SSEKMSKeyId)
	str("x-amz-version-id", &o.VersionId)
	return nil
}

// listRoot decodes the children of the root element, whatever its name (the
// SDK does not look at it).
func (d *xmlDoc) listRoot(o *s3.ListObjectsV2Output, root []byte) error {
	return d.children(root, func(name []byte) error {
		switch {
		case fold(name, "Contents"):
			var obj types.Object
			if err := d.object(&obj, name); err != nil {
				return err
			}
			if o.Contents == nil {
				o.Contents = make([]types.Object, 0, 1000)
			}
			o.Contents = append(o.Contents, obj)
			return nil
		case fold(name, "CommonPrefixes"):
			var cp types.CommonPrefix
			err := d.children(name, func(name []byte) error {
				if fold(name, "Prefix") {
					return d.str(name, &cp.Prefix)
				}
				return d.skip(name)
			})
			if err != nil {
				return err
			}
			o.CommonPrefixes = append(o.CommonPrefixes, cp)
			return nil
		case fold(name, "ContinuationToken"):
			return d.str(name, &o.ContinuationToken)
		case fold(name, "Delimiter"):
			return d.str(name, &o.Delimiter)
		case fold(name, "EncodingType"):
			v, err := d.value(name)
			o.EncodingType = types.EncodingType(v)
			return err
		case fold(name, "IsTruncated"):
			return d.boolean(name, &o.IsTruncated)
		case fold(name, "KeyCount"):
			return d.int32(name, &o.KeyCount)
		case fold(name, "MaxKeys"):
			return d.int32(name, &o.MaxKeys)
		case fold(name, "Name"):
			return d.str(name, &o.Name)
		case fold(name, "NextContinuationToken"):
			return d.str(name, &o.NextContinuationToken)
		case fold(name, "Prefix"):
			return d.str(name, &o.Prefix)
		case fold(name, "StartAfter"):
			return d.str(name, &o.StartAfter)
		}
		return d.skip(name)
	})
}

// object decodes the children of a Contents element into obj.
func (d *xmlDoc) object(obj *types.Object, contents []byte) error {
	return d.children(contents, func(name []byte) error {
		switch {
		case fold(name, "ChecksumAlgorithm"):
			v, err := d.value(name)
			if err != nil {
				return err
			}
			obj.ChecksumAlgorithm = append(obj.ChecksumAlgorithm, types.ChecksumAlgorithm(v))
			return nil
		case fold(name, "ChecksumType"):
			v, err := d.value(name)
			obj.ChecksumType = types.ChecksumType(v)
			return err
		case fold(name, "ETag"):
			return d.str(name, &obj.ETag)
		case fold(name, "Key"):
			return d.str(name, &obj.Key)
		case fold(name, "LastModified"):
			return d.timestamp(name, &obj.LastModified)
		case fold(name, "Owner"):
			if obj.Owner == nil { // a second Owner adds to the first, as in the SDK
				obj.Owner = &types.Owner{}
			}
			return d.children(name, func(name []byte) error {
				switch {
				case fold(name, "DisplayName"):
					return d.str(name, &obj.Owner.DisplayName)
				case fold(name, "ID"):
					return d.str(name, &obj.Owner.ID)
				}
				return d.skip(name)
			})
		case fold(name, "RestoreStatus"):
			if obj.RestoreStatus == nil {
				obj.RestoreStatus = &types.RestoreStatus{}
			}
			return d.children(name, func(name []byte) error {
				switch {
				case fold(name, "IsRestoreInProgress"):
					return d.boolean(name, &obj.RestoreStatus.IsRestoreInProgress)
				case fold(name, "RestoreExpiryDate"):
					return d.timestamp(name, &obj.RestoreStatus.RestoreExpiryDate)
				}
				return d.skip(name)
			})
		case fold(name, "Size"):
			v, err := d.value(name)
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return decline("Size %q", v)
			}
			obj.Size = &n
			return nil
		case fold(name, "StorageClass"):
			v, err := d.value(name)
			obj.StorageClass = types.ObjectStorageClass(v)
			return err
		}
		return d.skip(name)
	})
}
