package testenv

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// S3ProxyOptions configure [StartS3Proxy]. The zero value passes everything
// through unchanged.
type S3ProxyOptions struct {
	// RewriteList, when set, rewrites the body of every successful (200)
	// ListObjectsV2 and ListMultipartUploads response. An error answers
	// the request with 502 Bad Gateway and the error's text.
	RewriteList func(body []byte) ([]byte, error)
	// DropMetadata, when set, removes the user metadata (x-amz-meta-*
	// headers) from the responses to the HEAD and GET requests of the
	// objects whose key (the path after the bucket) it returns true for:
	// a server that does not keep metadata on some objects (SeaweedFS on
	// directory markers).
	DropMetadata func(key string) bool
}

// S3Proxy is a reverse proxy on 127.0.0.1 in front of a real S3 server
// (a [MinIO]) that bends the server's answers, to test ferry against the
// behaviour of other S3-compatible servers with a real server behind. It
// re-signs nothing: requests, signed by the client for the proxy's host,
// pass through untouched (Host header included), and only response bodies
// are rewritten. It records the method, URL and headers of every request.
type S3Proxy struct {
	// Endpoint is the proxy's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey, SecretKey and Region are the upstream server's.
	AccessKey, SecretKey, Region string

	rewrites atomic.Int64
	mu       sync.Mutex
	requests []ProxiedRequest
}

// ProxiedRequest is a request the proxy forwarded.
type ProxiedRequest struct {
	Method string
	// URL is the request's path and query.
	URL    *url.URL
	Header http.Header
}

// StartS3Proxy starts a proxy in front of upstream, served over plain HTTP
// whatever the upstream's scheme. It is closed when the test ends.
func StartS3Proxy(t testing.TB, upstream *MinIO, opts S3ProxyOptions) *S3Proxy {
	t.Helper()
	target, err := url.Parse(upstream.Endpoint)
	if err != nil {
		t.Fatalf("testenv: proxy: upstream endpoint: %v", err)
	}
	p := &S3Proxy{AccessKey: upstream.AccessKey, SecretKey: upstream.SecretKey, Region: upstream.Region}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The client signed the proxy's host: keep it so the
			// signature still verifies upstream.
			r.Out.Host = r.In.Host
			p.mu.Lock()
			p.requests = append(p.requests, ProxiedRequest{Method: r.In.Method, URL: cloneURL(r.In.URL), Header: r.In.Header.Clone()})
			p.mu.Unlock()
		},
		Transport: upstream.httpClient().Transport,
		ModifyResponse: func(resp *http.Response) error {
			if opts.DropMetadata != nil && resp.Request != nil &&
				(resp.Request.Method == http.MethodHead || resp.Request.Method == http.MethodGet) && !isListRequest(resp.Request) {
				_, key, _ := strings.Cut(strings.TrimPrefix(resp.Request.URL.Path, "/"), "/")
				if opts.DropMetadata(key) {
					for h := range resp.Header {
						if strings.HasPrefix(strings.ToLower(h), "x-amz-meta-") {
							resp.Header.Del(h)
						}
					}
				}
			}
			if opts.RewriteList == nil || resp.StatusCode != http.StatusOK || !isListRequest(resp.Request) {
				return nil
			}
			return p.rewrite(resp, opts.RewriteList)
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "testenv proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy: listen: %v", err)
	}
	srv := &http.Server{Handler: rp}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	p.Endpoint = "http://" + l.Addr().String()
	return p
}

// isListRequest reports a ListObjectsV2 (GET /bucket?list-type=2) or
// ListMultipartUploads (GET /bucket?uploads) request.
func isListRequest(r *http.Request) bool {
	if r == nil || r.Method != http.MethodGet {
		return false
	}
	q := r.URL.Query()
	return q.Get("list-type") == "2" || q.Has("uploads")
}

func (p *S3Proxy) rewrite(resp *http.Response, rewrite func([]byte) ([]byte, error)) error {
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		return fmt.Errorf("cannot rewrite a body with Content-Encoding %q", ce)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read list response: %w", err)
	}
	body, err = rewrite(body)
	if err != nil {
		return fmt.Errorf("rewrite list response: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	p.rewrites.Add(1)
	return nil
}

// Rewrites returns the number of response bodies rewritten so far.
func (p *S3Proxy) Rewrites() int { return int(p.rewrites.Load()) }

// Requests returns the requests forwarded so far, oldest first.
func (p *S3Proxy) Requests() []ProxiedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxiedRequest(nil), p.requests...)
}

func cloneURL(u *url.URL) *url.URL {
	c := *u
	return &c
}

var (
	// listKeyElem matches an element of a listing response whose text S3
	// URL-encodes with EncodingType url.
	listKeyElem      = regexp.MustCompile(`<(Key|Prefix|StartAfter|Delimiter|Marker|NextMarker|KeyMarker|NextKeyMarker)>([^<]*)</(?:Key|Prefix|StartAfter|Delimiter|Marker|NextMarker|KeyMarker|NextKeyMarker)>`)
	encodingTypeElem = regexp.MustCompile(`<EncodingType>([^<]*)</EncodingType>`)
)

// RawListKeys is a [S3ProxyOptions.RewriteList] rule that makes a listing
// look like one from a server that ignores encoding-type=url, as Versity
// Gateway does: keys, prefixes, markers and the delimiter are URL-decoded
// (and XML-escaped again) and the EncodingType element is dropped. A body
// without EncodingType url is returned unchanged.
func RawListKeys(body []byte) ([]byte, error) { return rawListKeys(body, false) }

// MislabeledListKeys is like [RawListKeys] but keeps
// <EncodingType>url</EncodingType>: a broken server that says its keys are
// URL-encoded when they are not.
func MislabeledListKeys(body []byte) ([]byte, error) { return rawListKeys(body, true) }

func rawListKeys(body []byte, keepEncodingType bool) ([]byte, error) {
	m := encodingTypeElem.FindSubmatch(body)
	if m == nil || string(m[1]) != "url" {
		return body, nil
	}
	var errs []error
	out := listKeyElem.ReplaceAllFunc(body, func(elem []byte) []byte {
		sub := listKeyElem.FindSubmatch(elem)
		name := string(sub[1])
		var text string
		if err := xml.Unmarshal([]byte("<x>"+string(sub[2])+"</x>"), &text); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, sub[2], err))
			return elem
		}
		raw, err := url.QueryUnescape(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, text, err))
			return elem
		}
		var b bytes.Buffer
		b.WriteString("<" + name + ">")
		if err := xml.EscapeText(&b, []byte(raw)); err != nil {
			errs = append(errs, err)
			return elem
		}
		b.WriteString("</" + name + ">")
		return b.Bytes()
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !keepEncodingType {
		out = encodingTypeElem.ReplaceAll(out, nil)
	}
	return out, nil
}
