package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/job"
)

//go:embed assets
var assets embed.FS

// TokenHeader is the request header that carries the dashboard's token.
const TokenHeader = "X-Ferry-Token"

// Options configure a [Server]. Backend and Token are required.
type Options struct {
	Backend Backend
	// Token authorizes actions, and every API call unless Loopback.
	Token string
	// Loopback: the server listens on loopback addresses only, so
	// read-only calls need no token (and Host headers must name a
	// loopback host). The zero value asks for the token everywhere.
	Loopback bool
	// Interval between samples of the jobs (default 1s); History the
	// samples kept per job for its chart (default 300).
	Interval time.Duration
	History  int
	// Log receives the server's problems (default: discarded).
	Log *slog.Logger
}

// Server is the dashboard: the page, the JSON API and the sampler that
// feeds the charts.
type Server struct {
	o    Options
	hist *history
	mux  *http.ServeMux

	mu      sync.Mutex
	states  []job.State
	sampled time.Time
	lastErr error
}

// NewToken returns a fresh random token (32 hex digits).
func NewToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("dashboard token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// New returns a dashboard server.
func New(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("dashboard: no backend")
	}
	if len(o.Token) < 16 {
		return nil, errors.New("dashboard: a token of at least 16 characters is required")
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.History <= 0 {
		o.History = 300
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, hist: newHistory(o.History), mux: http.NewServeMux()}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("dashboard assets: %w", err)
	}
	files := http.FileServerFS(static)
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})
	s.mux.Handle("GET /static/", http.StripPrefix("/static", files))
	s.mux.HandleFunc("GET /api/state", s.read(s.handleState))
	s.mux.HandleFunc("GET /api/jobs/{id}/dlq", s.read(s.handleDLQ))
	s.mux.HandleFunc("POST /api/jobs/{id}/{action}", s.handleAction)
	return s, nil
}

// IsLoopback reports whether a listen address (host:port) accepts
// connections from this machine only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler returns the dashboard's HTTP handler: security headers, the
// Host check and the routes.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if s.o.Loopback && !loopbackHost(r.Host) {
			// A page of another site that made its name resolve to
			// 127.0.0.1 (DNS rebinding) sends its own name here.
			httpError(w, http.StatusForbidden, "host %q is not a loopback name", r.Host)
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenOK compares the request's token with the server's in constant time
// (hashes first, so the length leaks nothing either).
func (s *Server) tokenOK(r *http.Request) bool {
	got := sha256.Sum256([]byte(r.Header.Get(TokenHeader)))
	want := sha256.Sum256([]byte(s.o.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1 && r.Header.Get(TokenHeader) != ""
}

// crossSite reports whether a browser says the request comes from another
// site.
func crossSite(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return true
		}
	}
	return false
}

// read wraps a read-only API handler: the token is needed unless the
// server is on loopback only.
func (s *Server) read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !s.o.Loopback && !s.tokenOK(r) {
			httpError(w, http.StatusForbidden, "this dashboard listens beyond loopback: send the token printed at start in the %s header", TokenHeader)
			return
		}
		h(w, r)
	}
}

// jobView is a job as the page shows it.
type jobView struct {
	ID              string         `json:"id"`
	Command         string         `json:"command"`
	Source          string         `json:"source"`
	Destination     string         `json:"destination"`
	Status          job.Status     `json:"status"`
	Message         string         `json:"message,omitempty"`
	Error           string         `json:"error,omitempty"`
	Created         time.Time      `json:"created"`
	Updated         time.Time      `json:"updated"`
	Started         time.Time      `json:"started"`
	Finished        *time.Time     `json:"finished,omitempty"`
	Duration        float64        `json:"duration_seconds"`
	ListingComplete bool           `json:"listing_complete"`
	Counters        job.Counters   `json:"counters"`
	ObjectsPerSec   float64        `json:"objects_per_second"`
	BytesPerSec     float64        `json:"bytes_per_second"`
	ETA             *float64       `json:"eta_seconds"`
	History         []Point        `json:"history"`
	Unsafe          []job.KeyError `json:"skipped_unsafe,omitempty"`
	Gaps            []job.KeyError `json:"gaps,omitempty"`
}

// maxNamed bounds the keys a job view names (unsafe, gaps).
const maxNamed = 50

func side(s job.Side) string {
	if s.Key == "" {
		return s.Location
	}
	if strings.HasSuffix(s.Location, "/") {
		return s.Location + s.Key
	}
	return s.Location + "/" + s.Key
}

func (s *Server) view(st job.State) jobView {
	pts, objRate, byteRate := s.hist.view(st.Spec.ID)
	v := jobView{
		ID: st.Spec.ID, Command: st.Spec.Command, Source: side(st.Spec.Src), Destination: side(st.Spec.Dst),
		Status: st.Status, Message: st.Message, Error: st.Error,
		Created: st.Spec.Created, Updated: st.Updated, Started: st.Started, Finished: st.Finished, Duration: st.Duration,
		ListingComplete: st.ListingComplete(), Counters: st.Counters,
		ObjectsPerSec: objRate, BytesPerSec: byteRate, ETA: eta(st, objRate, byteRate), History: pts,
		Unsafe: st.Unsafe[:min(len(st.Unsafe), maxNamed)], Gaps: st.Gaps[:min(len(st.Gaps), maxNamed)],
	}
	if !st.Status.Finished() && st.Status != job.Paused && !st.Started.IsZero() {
		v.Duration = time.Since(st.Started).Seconds()
	}
	return v
}

// stateView is the answer of GET /api/state.
type stateView struct {
	Now  time.Time `json:"now"`
	Jobs []jobView `json:"jobs"`
	// Workers is null when the backend does not know the workers.
	Workers []WorkerInfo `json:"workers"`
	Error   string       `json:"error,omitempty"`
}

// sample reads every job once and records it for the charts.
func (s *Server) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	states, err := s.o.Backend.Jobs(ctx)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sampled, s.lastErr = now, err
	if err != nil {
		s.o.Log.Warn("dashboard: read jobs", "err", err)
		return
	}
	s.states = states
	s.hist.record(states, now)
}

func (s *Server) handleState(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sampled := !s.sampled.IsZero()
	s.mu.Unlock()
	if !sampled {
		s.sample(r.Context())
	}
	s.mu.Lock()
	states, err := s.states, s.lastErr
	s.mu.Unlock()
	out := stateView{Now: time.Now().UTC(), Jobs: make([]jobView, 0, len(states))}
	for _, st := range states {
		out.Jobs = append(out.Jobs, s.view(st))
	}
	if err != nil {
		out.Error = err.Error()
	}
	if ws, ok := s.o.Backend.(WorkerSource); ok {
		out.Workers = ws.Workers()
		if out.Workers == nil {
			out.Workers = []WorkerInfo{}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// dlqLimit bounds the dead-letter entries one request returns.
const dlqLimit = 200

// dlqView is one dead-letter entry as the page shows it.
type dlqView struct {
	Kind     string    `json:"kind"`
	Key      string    `json:"key,omitempty"`
	Size     int64     `json:"size,omitempty"`
	Listing  string    `json:"listing,omitempty"`
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	Time     time.Time `json:"time"`
}

func (s *Server) handleDLQ(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := job.ValidID(id); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	entries, err := s.o.Backend.DLQ(ctx, id, dlqLimit+1)
	if err != nil {
		s.actionError(w, err)
		return
	}
	out := struct {
		Entries   []dlqView `json:"entries"`
		Truncated bool      `json:"truncated"`
	}{Entries: make([]dlqView, 0, len(entries))}
	if len(entries) > dlqLimit {
		entries, out.Truncated = entries[:dlqLimit], true
	}
	for _, e := range entries {
		v := dlqView{Kind: e.Kind, Error: e.Error, Attempts: e.Attempts, Time: e.Time}
		if e.Obj != nil {
			v.Key, v.Size = e.Obj.K, e.Obj.S
		}
		if e.Task != nil {
			v.Listing = fmt.Sprintf("prefix=%q after=%q end=%q", e.Task.Prefix, e.Task.StartAfter, e.Task.End)
		}
		out.Entries = append(out.Entries, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if crossSite(r) {
		httpError(w, http.StatusForbidden, "cross-site request refused")
		return
	}
	if !s.tokenOK(r) {
		httpError(w, http.StatusForbidden, "actions need the token printed at start, in the %s header", TokenHeader)
		return
	}
	id := r.PathValue("id")
	if err := job.ValidID(id); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	a, ok := parseAction(r.PathValue("action"))
	if !ok {
		httpError(w, http.StatusNotFound, "no action %q (pause, resume, cancel, redrive)", r.PathValue("action"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	msg, err := s.o.Backend.Act(ctx, id, a)
	if err != nil {
		s.actionError(w, err)
		return
	}
	s.o.Log.Info("dashboard action", "job", id, "action", string(a), "remote", r.RemoteAddr)
	s.sample(ctx) // the next poll shows the change at once
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
}

func (s *Server) actionError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, job.ErrNotFound):
		httpError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, job.ErrFinished), errors.Is(err, ErrUnavailable), errors.Is(err, job.ErrLocked), errors.Is(err, job.ErrIncompatible):
		httpError(w, http.StatusConflict, "%v", err)
	default:
		s.o.Log.Warn("dashboard", "err", err)
		httpError(w, http.StatusInternalServerError, "%v", err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "encode: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func httpError(w http.ResponseWriter, code int, format string, a ...any) {
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, a...)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// Serve serves the dashboard on ln until ctx ends, then shuts the HTTP
// server down (in-flight requests get 5 seconds) and returns once every
// goroutine it started (sampler, backend watcher, HTTP server) ended. It
// closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.o.Log.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.o.Interval)
		defer t.Stop()
		for {
			s.sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	if wt, ok := s.o.Backend.(Watcher); ok {
		wg.Go(func() {
			if err := wt.Watch(ctx); err != nil && ctx.Err() == nil {
				s.o.Log.Warn("dashboard: workers", "err", err)
			}
		})
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if serr := srv.Shutdown(sctx); serr != nil {
			_ = srv.Close()
		}
		scancel()
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = fmt.Errorf("dashboard: %w", serr)
		}
	}
	cancel()
	wg.Wait()
	return err
}
