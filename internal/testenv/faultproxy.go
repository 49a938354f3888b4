package testenv

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is what a [FaultProxy] does to one request. The zero value forwards
// it untouched. Body faults (Flip, Truncate, ResetBody, Stall, Hold) apply
// to GET responses with a body of known length, or with Request to the body
// of a PUT request (PutObject, UploadPart) of known length; the others to
// any request.
type Fault struct {
	// Status, when not 0, answers the request with this status and an S3
	// error document (code SlowDown for 503, else InternalError), without
	// forwarding it.
	Status int
	// Reset resets the connection (TCP RST) instead of answering.
	Reset bool
	// Delay holds the request this long (or until the client goes away)
	// before forwarding it: a server's latency, before any answer.
	Delay time.Duration

	// At places the body faults: the byte at offset At×length of the body
	// (0 ≤ At < 1).
	At float64
	// Flip flips bit Bit (0-7) of the body's byte at At.
	Flip bool
	Bit  uint
	// Truncate ends the body just before At and closes the connection;
	// the Content-Length header still states the whole length.
	Truncate bool
	// ResetBody resets the connection just before the byte at At.
	ResetBody bool
	// Stall delivers nothing for this long (or until the client goes
	// away) just before the byte at At, then goes on.
	Stall time.Duration
	// Hold, when not nil, stalls like Stall until it is closed (or the
	// client goes away): a stall the test ends when it chooses.
	Hold <-chan struct{}
	// Request applies the body faults to the request's body as the proxy
	// reads it (a PUT), instead of the response's: a stall stops taking
	// bytes from the client, a flipped bit reaches the server, truncation
	// and reset fail the forwarded request (the client gets a 502 or a
	// reset connection).
	Request bool
}

func (f Fault) stalls() bool    { return f.Stall > 0 || f.Hold != nil }
func (f Fault) bodyFault() bool { return f.Flip || f.Truncate || f.ResetBody || f.stalls() }

// FaultStats count the faults a [FaultProxy] has injected (those that took
// effect: a flip counts once the flipped byte was sent on).
type FaultStats struct {
	Requests, Statuses, Resets, Flips, Truncations, BodyResets, Stalls int64
}

// FaultProxy is an HTTP reverse proxy in front of a server (a [MinIO]) that
// injects faults into chosen requests: flipped bits in response bodies,
// bodies cut short (keeping their Content-Length), reset connections,
// stalls, error statuses. It listens on 127.0.0.1 (plain HTTP) and keeps
// the Host header of the requests, so SigV4 signatures made for its URL stay
// valid.
type FaultProxy struct {
	// URL is the proxy's endpoint, "http://127.0.0.1:PORT".
	URL string

	decide atomic.Pointer[func(*http.Request) Fault]
	after  atomic.Pointer[func(*http.Request)]
	rp     *httputil.ReverseProxy

	requests, statuses, resets, flips, truncations, bodyResets, stalls atomic.Int64

	// throttleAbove, when not 0, answers 503 SlowDown to a request that
	// arrives while that many are being forwarded (SetThrottle).
	throttleAbove, inFlight, throttled atomic.Int64
}

type (
	connKey  struct{}
	faultKey struct{}
)

// StartFaultProxy starts a proxy in front of the server at endpoint (a
// [MinIO]'s Endpoint, trusted with tlsConfig when it is HTTPS; nil for
// plain HTTP), forwarding everything until [FaultProxy.SetFaults] says
// otherwise. It is closed when the test ends.
func StartFaultProxy(t testing.TB, endpoint string, tlsConfig *tls.Config) *FaultProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil || target.Host == "" {
		t.Fatalf("testenv: fault proxy target %q: %v", endpoint, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: fault proxy: %v", err)
	}
	p := &FaultProxy{URL: "http://" + ln.Addr().String()}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	tr.DisableCompression = true
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the host the request was signed for
		},
		Transport:      tr,
		FlushInterval:  -1, // pass bytes on as they come, so a cut body is cut where said
		ModifyResponse: p.modify,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	srv := &http.Server{
		Handler:     http.HandlerFunc(p.serve),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		ErrorLog:    log.New(io.Discard, "", 0),
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

// SetFaults makes decide choose the fault of every request from now on
// (nil: none). decide is called from many goroutines at once.
func (p *FaultProxy) SetFaults(decide func(r *http.Request) Fault) {
	if decide == nil {
		p.decide.Store(nil)
		return
	}
	p.decide.Store(&decide)
}

// SetAfter makes the proxy call after with every request it forwarded,
// once the answer (body included) was passed on to the client (nil: none).
// after is called from many goroutines at once.
func (p *FaultProxy) SetAfter(after func(r *http.Request)) {
	if after == nil {
		p.after.Store(nil)
		return
	}
	p.after.Store(&after)
}

// SetThrottle makes the proxy throttle by load, like a server: a request
// that arrives while k others are being forwarded (until their answers,
// bodies included, were passed on) is answered 503 SlowDown, not
// forwarded; k = 0 turns it off. These answers count in
// FaultStats.Statuses and Throttled. Faults chosen by SetFaults apply to
// the requests forwarded.
func (p *FaultProxy) SetThrottle(k int) { p.throttleAbove.Store(int64(k)) }

// Throttled returns how many requests SetThrottle's limit refused.
func (p *FaultProxy) Throttled() int64 { return p.throttled.Load() }

// Stats returns the faults injected so far.
func (p *FaultProxy) Stats() FaultStats {
	return FaultStats{
		Requests: p.requests.Load(), Statuses: p.statuses.Load(), Resets: p.resets.Load(),
		Flips: p.flips.Load(), Truncations: p.truncations.Load(), BodyResets: p.bodyResets.Load(), Stalls: p.stalls.Load(),
	}
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	var f Fault
	if k := p.throttleAbove.Load(); k > 0 && n > k {
		p.throttled.Add(1)
		f = Fault{Status: http.StatusServiceUnavailable}
	} else if d := p.decide.Load(); d != nil {
		f = (*d)(r)
	}
	switch {
	case f.Reset:
		p.resets.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				resetConn(c)
				return
			}
		}
		panic(http.ErrAbortHandler)
	case f.Status != 0:
		p.statuses.Add(1)
		code := "InternalError"
		if f.Status == http.StatusServiceUnavailable {
			code = "SlowDown"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<Error><Code>%s</Code><Message>injected by the fault proxy</Message><Resource>%s</Resource><RequestId>fault</RequestId></Error>`,
			code, r.URL.Path)
		return
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case f.bodyFault() && f.Request:
		if r.Method == http.MethodPut && r.ContentLength > 0 {
			at := min(max(int64(f.At*float64(r.ContentLength)), 0), r.ContentLength-1)
			conn, _ := r.Context().Value(connKey{}).(net.Conn)
			r.Body = &faultBody{rc: r.Body, p: p, f: f, at: at, ctx: r.Context(), conn: conn}
		}
	case f.bodyFault():
		r = r.WithContext(context.WithValue(r.Context(), faultKey{}, f))
	}
	p.rp.ServeHTTP(w, r)
	if a := p.after.Load(); a != nil {
		(*a)(r)
	}
}

// resetConn closes c with a TCP RST rather than a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// modify puts the body faults of the request into its response body.
func (p *FaultProxy) modify(resp *http.Response) error {
	f, ok := resp.Request.Context().Value(faultKey{}).(Fault)
	if !ok || resp.Request.Method != http.MethodGet || resp.ContentLength <= 0 ||
		(resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent) {
		return nil
	}
	at := min(max(int64(f.At*float64(resp.ContentLength)), 0), resp.ContentLength-1)
	conn, _ := resp.Request.Context().Value(connKey{}).(net.Conn)
	resp.Body = &faultBody{rc: resp.Body, p: p, f: f, at: at, ctx: resp.Request.Context(), conn: conn}
	return nil
}

var errInjected = errors.New("testenv: fault injected")

// faultBody applies a Fault at byte at of a response body as it passes.
type faultBody struct {
	rc      io.ReadCloser
	p       *FaultProxy
	f       Fault
	at, pos int64
	done    bool // the fault at at was applied
	ctx     context.Context
	conn    net.Conn
}

func (b *faultBody) Read(buf []byte) (int, error) {
	if b.pos == b.at && !b.done {
		b.done = true
		if b.f.stalls() {
			b.p.stalls.Add(1)
			if err := stall(b.ctx, b.f); err != nil {
				return 0, err
			}
		}
		switch {
		case b.f.Truncate:
			b.p.truncations.Add(1)
			return 0, errInjected // the proxy aborts the response: the connection closes
		case b.f.ResetBody:
			b.p.bodyResets.Add(1)
			if b.conn != nil {
				if tc, ok := b.conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
			}
			return 0, errInjected
		}
	}
	if b.pos < b.at && int64(len(buf)) > b.at-b.pos {
		buf = buf[:b.at-b.pos] // stop at the fault
	}
	n, err := b.rc.Read(buf)
	if b.f.Flip && b.pos <= b.at && b.at < b.pos+int64(n) {
		buf[b.at-b.pos] ^= 1 << (b.f.Bit % 8)
		b.p.flips.Add(1)
	}
	b.pos += int64(n)
	return n, err
}

func (b *faultBody) Close() error { return b.rc.Close() }

// stall waits for f.Stall to pass or f.Hold to be closed, whichever is set
// (both: whichever comes first), or for ctx to end.
func stall(ctx context.Context, f Fault) error {
	var timeout <-chan time.Time
	if f.Stall > 0 {
		t := time.NewTimer(f.Stall)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-f.Hold:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Chances are the probabilities of the faults [RandomFaults] injects.
type Chances struct {
	// Flip, Truncate, ResetBody and Stall are the chances that a GET
	// response body gets that fault, at a random place. At most one is
	// chosen per request, in this order.
	Flip, Truncate, ResetBody, Stall float64
	// StallFor is how long a stall lasts.
	StallFor time.Duration
	// Reset is the chance that a request's connection is reset.
	Reset float64
	// Unavailable is the chance that a request starts a burst of
	// Burst (at least 1) 503 SlowDown answers to it and its retries.
	Unavailable float64
	Burst       int
	// Methods, when not empty, limits the faults to requests with these
	// methods.
	Methods []string
	// Skip, when set, exempts the requests for which it returns true.
	Skip func(r *http.Request) bool
}

// RandomFaults returns a fault chooser for [FaultProxy.SetFaults] that
// draws faults with the given chances, reproducibly: the draws for a
// request depend only on seed, the request's method, path, query and Range
// header, and how many such requests came before it — not on the order in
// which concurrent requests arrive.
func RandomFaults(seed uint64, c Chances) func(r *http.Request) Fault {
	var mu sync.Mutex
	seen := map[uint64]int{}  // occurrences of each request
	burst := map[uint64]int{} // 503s still due to each request
	return func(r *http.Request) Fault {
		if len(c.Methods) > 0 && !slices.Contains(c.Methods, r.Method) {
			return Fault{}
		}
		if c.Skip != nil && c.Skip(r) {
			return Fault{}
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%s %s?%s %s", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Range"))
		key := h.Sum64()
		mu.Lock()
		n := seen[key]
		seen[key] = n + 1
		if burst[key] > 0 {
			burst[key]--
			mu.Unlock()
			return Fault{Status: http.StatusServiceUnavailable}
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(n))
		h.Write(b[:])
		rng := rand.New(rand.NewPCG(seed, h.Sum64()))
		if rng.Float64() < c.Unavailable {
			burst[key] = max(c.Burst, 1) - 1
			mu.Unlock()
			return Fault{Status: http.StatusServiceUnavailable}
		}
		mu.Unlock()
		if rng.Float64() < c.Reset {
			return Fault{Reset: true}
		}
		f := Fault{At: rng.Float64(), Bit: uint(rng.IntN(8))}
		switch u := rng.Float64(); {
		case u < c.Flip:
			f.Flip = true
		case u < c.Flip+c.Truncate:
			f.Truncate = true
		case u < c.Flip+c.Truncate+c.ResetBody:
			f.ResetBody = true
		case u < c.Flip+c.Truncate+c.ResetBody+c.Stall:
			f.Stall = c.StallFor
		}
		return f
	}
}
