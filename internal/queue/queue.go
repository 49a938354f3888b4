// Package queue connects ferry to NATS JetStream, either a server embedded in
// this process (the default: JetStream file storage under the state
// directory, no TCP listener unless asked) or an external cluster (--nats
// URL). Both are the same code path from here on: a *Conn with the streams
// and key-value buckets of docs/design.md ("The queue").
package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/transport"
	"github.com/ferry-dev/ferry/internal/trust"
)

// Names of the streams and buckets ferry uses.
const (
	StreamWork    = "FERRY_WORK"    // work queue: listing tasks, copy and delete batches
	StreamResults = "FERRY_RESULTS" // one record per object outcome and per listing task
	StreamDLQ     = "FERRY_DLQ"     // objects and tasks that kept failing
	StreamDeletes = "FERRY_DELETES" // deletes planned by sync --delete, held until listing completed
	BucketJobs    = "ferry-jobs"    // job specs and states
	BucketUploads = "ferry-uploads" // resumable multipart uploads
	BucketLocks   = "ferry-locks"   // one coordinator per job
	BucketLedger  = "ferry-ledger"  // per work item: registered and finished (job completion)
)

// Subjects.
func WorkSubject(job, kind string) string { return "ferry.work." + job + "." + kind }
func WorkFilter(job string) string        { return "ferry.work." + job + ".>" }
func ResultSubject(job string) string     { return "ferry.results." + job }
func DLQSubject(job string) string        { return "ferry.dlq." + job }
func DeleteSubject(job string) string     { return "ferry.deletes." + job }

// Options select and configure the NATS connection. The zero value (with
// StateDir set) starts an embedded server.
type Options struct {
	// URL of an external NATS server or cluster ("" = embedded).
	URL string
	// StateDir holds the embedded server's JetStream store (StateDir/jetstream)
	// and its lock file.
	StateDir string
	// Listen, for the embedded server, is a host:port to accept other ferry
	// workers on ("" = no TCP listener).
	Listen string
	// ListenToken, when set, is the token clients of the embedded server's
	// listener must present (this process's in-process connection too).
	ListenToken string
	// ListenCert and ListenKey, when set, make the listener serve TLS.
	ListenCert, ListenKey string
	// Credentials for an external server: a .creds file, an nkey seed file,
	// or a token (from the environment, never argv).
	CredsFile, NKeyFile, Token string
	// TLS for an external server: a CA bundle, and a client certificate.
	CAFile, CertFile, KeyFile string
	// AllowInsecure permits plain nats:// to a non-loopback host.
	AllowInsecure bool
	// Replicas for the streams and buckets ferry creates. Unless
	// ReplicasSet, an external cluster gets [DefaultReplicas] of its size.
	// Streams that exist keep theirs: the replica count is a property of
	// the deployment, set by whoever created them; a client never changes
	// it (an explicit, different value gives a warning).
	Replicas int
	// ReplicasSet: Replicas was given explicitly (warn when it differs from
	// the existing streams').
	ReplicasSet bool
	// EncryptionKey, when set, encrypts the embedded JetStream store at rest.
	EncryptionKey string
	// Name identifies this connection to the server (host and pid by default).
	Name string
	// Linger, for the process that ends up serving a state directory,
	// bounds how long Close waits for the other processes connected to it
	// to finish (nil: it does not wait); an interrupt (SIGINT, SIGTERM)
	// received while it waits ends the wait too. Waiting, when set, is
	// called once when Close starts waiting.
	Linger  context.Context
	Waiting func()
	// Signer signs what this process publishes (nil: a new key that only
	// this process trusts). Trust is the keys whose messages this process
	// accepts besides its own.
	Signer *trust.Signer
	Trust  []trust.PublicKey
}

// Conn is a connection to JetStream with ferry's streams and buckets set up.
type Conn struct {
	NC *nats.Conn
	JS jetstream.JetStream

	Jobs, Uploads, Locks, Ledger jetstream.KeyValue

	// Signer signs every message this process publishes; Trust holds the
	// keys whose messages and job specs it accepts (its own among them).
	Signer *trust.Signer
	Trust  *trust.Set

	// Warnings are problems found while setting up that do not stop ferry
	// (a --nats-replicas that disagrees with the existing streams).
	Warnings []string

	srv      *server.Server
	lockFile *os.File
	embedded bool
	// ready is set once setup is done.
	ready atomic.Bool

	// A state directory's server (statedir.go): the token this process
	// serves with, the directory, the shared or exclusive lock on its
	// clients.lock, and, for a client, the serving process and a channel
	// closed when the connection to it is lost.
	token, stateDir string
	clientsLock     *os.File
	serverPID       int
	lost            chan struct{}
	lostOnce        sync.Once
	linger          context.Context
	waiting         func()
}

// ErrLocked is returned when another process holds the embedded state
// directory.
var ErrLocked = errors.New("state directory is in use by another ferry process")

// Embedded reports whether the queue is a state directory's embedded
// server, run by this process (Serving) or by another ferry process of
// this machine that this one connected to.
func (c *Conn) Embedded() bool { return c.embedded }

// ClientURL is the URL other processes can reach an embedded server on when
// it listens, or "".
func (c *Conn) ClientURL() string {
	if c.srv == nil {
		return ""
	}
	if c.srv.Addr() == nil {
		return ""
	}
	return c.srv.ClientURL()
}

// Connect opens the connection and makes sure the streams and buckets exist.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Name == "" {
		h, _ := os.Hostname()
		o.Name = "ferry " + h + " pid " + strconv.Itoa(os.Getpid())
	}
	c := &Conn{Signer: o.Signer}
	if c.Signer == nil {
		c.Signer = trust.Generate()
	}
	c.Trust = trust.NewSet(append([]trust.PublicKey{c.Signer.Public()}, o.Trust...)...)
	var opts []nats.Option
	opts = append(opts, nats.Name(o.Name), nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		// Asynchronous errors (a permission the server denied) during
		// setup become setup's error (setupError); later ones are printed
		// on one line, as nats.go's default handler would.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if c.ready.Load() {
				fmt.Fprintf(os.Stderr, "ferry: nats: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			}
		}))
	url := o.URL
	if o.URL == "" {
		u, more, err := c.openStateDir(ctx, o)
		if err != nil {
			return nil, err
		}
		url = u
		opts = append(opts, more...)
		c.embedded, c.linger, c.waiting = true, o.Linger, o.Waiting
	} else {
		if err := CheckURL(o.URL, o.AllowInsecure); err != nil {
			return nil, err
		}
		if o.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(o.CredsFile))
		}
		if o.NKeyFile != "" {
			nk, err := nats.NkeyOptionFromSeed(o.NKeyFile)
			if err != nil {
				return nil, fmt.Errorf("nats nkey %s: %w", o.NKeyFile, err)
			}
			opts = append(opts, nk)
		}
		if o.Token != "" {
			opts = append(opts, nats.Token(o.Token))
		}
		if o.CAFile != "" {
			opts = append(opts, nats.RootCAs(o.CAFile))
		}
		if o.CertFile != "" {
			opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
		}
		if strings.HasPrefix(o.URL, "tls://") || o.CAFile != "" {
			opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
		}
		opts = append(opts, nats.Timeout(5*time.Second), nats.RetryOnFailedConnect(false))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.shutdownEmbedded()
		return nil, fmt.Errorf("connect to NATS %s: %w", displayURL(o.URL), err)
	}
	c.NC = nc
	// An async publish whose ack is lost (a node lost mid-publish) must
	// fail, not wait for ever: callers resend it with its ID.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(PublishAckTimeout))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c.JS = js
	if o.URL != "" && !o.ReplicasSet {
		o.Replicas = DefaultReplicas(len(nc.Servers()))
	}
	if err := c.setup(ctx, o.Replicas, o.ReplicasSet); err != nil {
		err = c.setupError(err)
		c.Close()
		if c.embedded || o.URL == "" {
			return nil, fmt.Errorf("%w (state directory %s: was it written with another encryption key? The key is the secret ferry-state-key in ferry's secret store)", err, o.StateDir)
		}
		return nil, err
	}
	c.ready.Store(true)
	return c, nil
}

// setupError names a permission the server denied while ferry's streams
// and buckets were looked up or created: the request itself only times
// out.
func (c *Conn) setupError(err error) error {
	if le := c.NC.LastError(); errors.Is(le, nats.ErrPermissionViolation) {
		return fmt.Errorf("%w: the server denied this NATS user a request (%s); ferry's streams and buckets are created by a coordinator (see 'ferry nats-permissions'): run 'ferry job list --nats URL' with a coordinator's credentials once, then start workers",
			err, strings.TrimPrefix(le.Error(), nats.ErrPermissionViolation.Error()+": "))
	}
	return err
}

func displayURL(u string) string {
	if u == "" {
		return "(embedded)"
	}
	if p, err := url.Parse(u); err == nil && p.User != nil {
		p.User = url.User("REDACTED")
		return p.String()
	}
	return u
}

// CheckURL refuses NATS URLs that would send credentials or job data in
// clear text to another machine: nats:// is allowed to loopback hosts only,
// unless allowInsecure. Several comma-separated URLs are each checked.
func CheckURL(raw string, allowInsecure bool) error {
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Host == "" {
			return fmt.Errorf("--nats %q: want nats://host:port or tls://host:port", one)
		}
		if u.User != nil {
			return fmt.Errorf("--nats: credentials are not accepted in the URL; use --nats-creds, --nats-nkey or FERRY_NATS_TOKEN")
		}
		switch u.Scheme {
		case "tls":
		case "nats":
			if !allowInsecure && !transport.IsLoopback(u.Hostname()) {
				return fmt.Errorf("--nats %s: plain nats:// to a non-loopback host is refused; use tls:// (or --allow-insecure-nats)", u.Host)
			}
		default:
			return fmt.Errorf("--nats %q: unknown scheme %q (want nats:// or tls://)", one, u.Scheme)
		}
	}
	return nil
}

// CheckListen refuses a listener for other machines that would accept
// anyone or carry jobs and credentials in clear text: an address other
// than loopback needs both a token and TLS.
func CheckListen(addr string, auth, tls bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT", addr)
	}
	if host != "" && transport.IsLoopback(host) {
		return nil
	}
	switch {
	case !tls:
		return fmt.Errorf("--listen %s: a non-loopback address needs TLS (--listen-cert and --listen-key): the workers' token and every job would cross the network in clear text", addr)
	case !auth:
		return fmt.Errorf("--listen %s: a non-loopback address needs authentication (a token)", addr)
	}
	return nil
}

func (c *Conn) shutdownEmbedded() {
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
		c.srv = nil
	}
	if c.lockFile != nil {
		if c.stateDir != "" {
			// Before the lock is released: the next server writes its own.
			os.Remove(ServerFile(c.stateDir))
		}
		c.lockFile.Close()
		c.lockFile = nil
	}
	if c.clientsLock != nil {
		c.clientsLock.Close()
		c.clientsLock = nil
	}
}

// Close drains the connection and stops an embedded server. A process
// that serves its state directory to others first waits, while
// Options.Linger lasts, until they have disconnected.
func (c *Conn) Close() {
	if c.srv != nil && c.linger != nil {
		c.waitForClients(c.linger, c.waiting)
	}
	if c.NC != nil {
		_ = c.NC.Drain()
		for i := 0; i < 50 && !c.NC.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		c.NC.Close()
	}
	c.shutdownEmbedded()
}

// JetStreamWait bounds how long Connect waits for JetStream to answer: a
// cluster that is still electing its meta leader (just started, or a node
// lost) answers no JetStream API request until it has one.
const JetStreamWait = 2 * time.Minute

// waitJetStream returns once JetStream answers an account-info request,
// retrying unanswered requests for up to JetStreamWait. An account without
// JetStream is a definite answer and is not retried.
func (c *Conn) waitJetStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, JetStreamWait)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.JS.AccountInfo(actx)
		acancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("jetstream: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("jetstream did not answer within %s (is the cluster electing a leader, or is JetStream off?): %w", JetStreamWait, err)
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (c *Conn) setup(ctx context.Context, replicas int, explicit bool) error {
	if err := c.waitJetStream(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	streams := []jetstream.StreamConfig{
		{Name: StreamWork, Subjects: []string{"ferry.work.>"}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: 30 * time.Minute, MaxMsgSize: 4 << 20},
		{Name: StreamResults, Subjects: []string{"ferry.results.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: 30 * time.Minute, MaxMsgSize: 4 << 20},
		{Name: StreamDLQ, Subjects: []string{"ferry.dlq.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: 30 * time.Minute},
		{Name: StreamDeletes, Subjects: []string{"ferry.deletes.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: 30 * time.Minute},
	}
	for _, sc := range streams {
		s, err := c.JS.Stream(ctx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err = c.JS.CreateStream(ctx, sc); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return fmt.Errorf("create stream %s: %w", sc.Name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		c.checkReplicas(sc.Name, s.CachedInfo().Config.Replicas, replicas, explicit)
	}
	kvs := []struct {
		dst *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&c.Jobs, jetstream.KeyValueConfig{Bucket: BucketJobs, Storage: jetstream.FileStorage, Replicas: replicas, History: 1}},
		{&c.Uploads, jetstream.KeyValueConfig{Bucket: BucketUploads, Storage: jetstream.FileStorage, Replicas: replicas, History: 1}},
		{&c.Locks, jetstream.KeyValueConfig{Bucket: BucketLocks, Storage: jetstream.FileStorage, Replicas: replicas, History: 1, TTL: LockTTL}},
		{&c.Ledger, jetstream.KeyValueConfig{Bucket: BucketLedger, Storage: jetstream.FileStorage, Replicas: replicas, History: 1}},
	}
	for _, b := range kvs {
		kv, err := c.JS.KeyValue(ctx, b.cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = c.JS.CreateKeyValue(ctx, b.cfg)
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = c.JS.KeyValue(ctx, b.cfg.Bucket)
			}
			if err != nil {
				return fmt.Errorf("create bucket %s: %w", b.cfg.Bucket, err)
			}
		} else if err != nil {
			return fmt.Errorf("bucket %s: %w", b.cfg.Bucket, err)
		} else if st, serr := kv.Status(ctx); serr == nil {
			if js, ok := st.(*jetstream.KeyValueBucketStatus); ok {
				c.checkReplicas("bucket "+b.cfg.Bucket, js.StreamInfo().Config.Replicas, replicas, explicit)
			}
		}
		*b.dst = kv
	}
	return nil
}

// checkReplicas warns when an explicit --nats-replicas differs from what an
// existing stream has; the stream is left as it is.
func (c *Conn) checkReplicas(name string, have, want int, explicit bool) {
	if explicit && have != want {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s has %d replica(s); --nats-replicas %d ignored (streams keep the replica count they were created with)", name, have, want))
	}
}

// PublishAckTimeout bounds the wait for a stored message's ack.
const PublishAckTimeout = 10 * time.Second

// DefaultReplicas is the replica count ferry gives the streams it creates
// when --nats-replicas is not set: 3 on a cluster of 3 or more servers (so
// that losing one node loses nothing), else 1.
func DefaultReplicas(servers int) int {
	if servers >= 3 {
		return 3
	}
	return 1
}

// LockTTL is how long a coordinator's lock on a job outlives its last
// refresh: a killed coordinator's job can be resumed after at most this.
const LockTTL = 15 * time.Second

// SignedMsg returns a message for subject carrying data, signed by this
// process for job (see package trust).
func (c *Conn) SignedMsg(subject, job string, data []byte) *nats.Msg {
	return c.Signer.Msg(subject, job, data)
}

// Publish stores a signed message on a stream, de-duplicated by msgID.
func (c *Conn) Publish(ctx context.Context, subject, job string, data []byte, msgID string) (*jetstream.PubAck, error) {
	return c.JS.PublishMsg(ctx, c.SignedMsg(subject, job, data), jetstream.WithMsgID(msgID))
}
