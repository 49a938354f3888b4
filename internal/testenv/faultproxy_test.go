package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// backend serves 1 MiB of known bytes at every path, honouring Range.
func backend(t *testing.T) (*httptest.Server, []byte) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Host-Check") != "" && r.Host != r.Header.Get("Host-Check") {
			http.Error(w, "host "+r.Host, http.StatusBadRequest)
			return
		}
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv, data
}

func get(t *testing.T, url string) (*http.Response, []byte, error) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaultProxy(t *testing.T) {
	srv, data := backend(t)
	p := StartFaultProxy(t, srv.URL, nil)

	t.Run("forwards untouched, keeping Host", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, p.URL+"/a", nil)
		req.Header.Set("Host-Check", req.URL.Host)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
			t.Fatalf("status %d, %d bytes, err %v", resp.StatusCode, len(b), err)
		}
	})
	t.Run("flip", func(t *testing.T) {
		p.SetFaults(func(*http.Request) Fault { return Fault{Flip: true, At: 0.5, Bit: 3} })
		defer p.SetFaults(nil)
		resp, b, err := get(t, p.URL+"/a")
		if err != nil || resp.ContentLength != int64(len(data)) || len(b) != len(data) {
			t.Fatalf("%d bytes, err %v", len(b), err)
		}
		want := bytes.Clone(data)
		want[len(data)/2] ^= 1 << 3
		if !bytes.Equal(b, want) {
			t.Error("body is not the data with one bit flipped")
		}
	})
	t.Run("truncate keeps Content-Length", func(t *testing.T) {
		p.SetFaults(func(*http.Request) Fault { return Fault{Truncate: true, At: 0.25} })
		defer p.SetFaults(nil)
		resp, b, err := get(t, p.URL+"/a")
		if !errors.Is(err, io.ErrUnexpectedEOF) || resp.ContentLength != int64(len(data)) || len(b) != len(data)/4 || !bytes.Equal(b, data[:len(b)]) {
			t.Fatalf("%d bytes of %d, err %v", len(b), resp.ContentLength, err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		p.SetFaults(func(*http.Request) Fault { return Fault{Reset: true} })
		defer p.SetFaults(nil)
		if _, _, err := get(t, p.URL+"/a"); err == nil {
			t.Fatal("no error from a reset connection")
		}
	})
	t.Run("reset mid-body", func(t *testing.T) {
		p.SetFaults(func(*http.Request) Fault { return Fault{ResetBody: true, At: 0.5} })
		defer p.SetFaults(nil)
		_, b, err := get(t, p.URL+"/a")
		if err == nil || len(b) >= len(data) {
			t.Fatalf("%d bytes, err %v", len(b), err)
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("error %v", err)
		}
	})
	t.Run("503", func(t *testing.T) {
		p.SetFaults(func(*http.Request) Fault { return Fault{Status: http.StatusServiceUnavailable} })
		defer p.SetFaults(nil)
		resp, b, err := get(t, p.URL+"/a")
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(b, []byte("<Code>SlowDown</Code>")) {
			t.Fatalf("status %v, body %q, err %v", resp, b, err)
		}
	})
	t.Run("stall until the client goes away", func(t *testing.T) {
		p.SetFaults(func(*http.Request) Fault { return Fault{Stall: time.Hour, At: 0.5} })
		defer p.SetFaults(nil)
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/a", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadFull(resp.Body, make([]byte, len(data)/2))
		if err != nil || got != len(data)/2 {
			t.Fatalf("read %d before the stall: %v", got, err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := resp.Body.Read(make([]byte, 1))
			done <- err
		}()
		cancel() // the stalled read ends only because the client gives up
		if err := <-done; err == nil {
			t.Fatal("read past the stall")
		}
	})
	// (The stall is counted when the proxy reaches it, which the client
	// cannot observe; the other faults are counted before it sees them.)
	st := p.Stats()
	if st.Flips != 1 || st.Truncations != 1 || st.Resets != 1 || st.BodyResets != 1 || st.Statuses != 1 || st.Stalls > 1 {
		t.Errorf("stats %+v", st)
	}
}

// The faults RandomFaults draws depend on each request and how many like it
// came before, not on how requests for different objects interleave.
func TestRandomFaultsReproducible(t *testing.T) {
	c := Chances{Flip: 0.2, Truncate: 0.1, ResetBody: 0.1, Stall: 0.1, StallFor: time.Second, Reset: 0.05, Unavailable: 0.1, Burst: 2}
	draw := func(order []int) map[string]Fault {
		d := RandomFaults(42, c)
		out := map[string]Fault{}
		for _, i := range order {
			r := httptest.NewRequest(http.MethodGet, "/b/k"+strconv.Itoa(i%50), nil)
			r.Header.Set("Range", "bytes=0-"+strconv.Itoa(i%7))
			key := r.URL.Path + " " + r.Header.Get("Range") + " #"
			n := 0
			for {
				if _, ok := out[key+strconv.Itoa(n)]; !ok {
					break
				}
				n++
			}
			out[key+strconv.Itoa(n)] = d(r)
		}
		return out
	}
	order := make([]int, 1000)
	for i := range order {
		order[i] = i
	}
	a := draw(order)
	slices.Reverse(order)
	b := draw(order)
	faults := 0
	for k, f := range a {
		if b[k] != f {
			t.Fatalf("request %s: %+v, then %+v", k, f, b[k])
		}
		if f != (Fault{At: f.At, Bit: f.Bit}) {
			faults++
		}
	}
	if faults < 300 || faults > 800 {
		t.Errorf("%d faults in %d requests", faults, len(a))
	}
}

// Request body faults: a flipped bit reaches the server; a held PUT body
// stops at the byte chosen until the hold is released.
func TestFaultProxyRequestBody(t *testing.T) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	half := len(data) / 2
	reached := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		head := make([]byte, half)
		if _, err := io.ReadFull(r.Body, head); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reached <- struct{}{}
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(append(head, rest...)) // echo
	}))
	t.Cleanup(srv.Close)
	p := StartFaultProxy(t, srv.URL, nil)
	put := func() ([]byte, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, p.URL+"/a", bytes.NewReader(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}

	p.SetFaults(func(*http.Request) Fault { return Fault{Request: true, Flip: true, At: 0.25, Bit: 1} })
	got, err := put()
	<-reached
	want := bytes.Clone(data)
	want[len(data)/4] ^= 1 << 1
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("flip: %d bytes, err %v, equal %v", len(got), err, bytes.Equal(got, want))
	}

	hold := make(chan struct{})
	p.SetFaults(func(*http.Request) Fault { return Fault{Request: true, Hold: hold, At: 0.5} })
	done := make(chan error, 1)
	go func() {
		got, err := put()
		if err == nil && !bytes.Equal(got, data) {
			err = errors.New("echo differs")
		}
		done <- err
	}()
	<-reached // the server has the bytes before the hold
	select {
	case err := <-done:
		t.Fatalf("the PUT ended while its body was held: %v", err)
	default:
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Flips != 1 || st.Stalls != 1 {
		t.Errorf("stats %+v", st)
	}
}
