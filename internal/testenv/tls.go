package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority for tests.
type CA struct {
	// Cert is the CA certificate and CertPEM its PEM encoding.
	Cert    *x509.Certificate
	CertPEM []byte
	// CertFile is the path of a file holding CertPEM (a CA bundle).
	CertFile string
	// Pool trusts only this CA.
	Pool *x509.CertPool

	key *ecdsa.PrivateKey
	dir string
}

// ServerCert is a certificate signed by a [CA] with its private key.
type ServerCert struct {
	// CertPEM and KeyPEM are the certificate and its PKCS #8 private key.
	CertPEM, KeyPEM []byte
	// CertFile and KeyFile hold CertPEM and KeyPEM.
	CertFile, KeyFile string
	// TLS is the pair ready for a tls.Config.
	TLS tls.Certificate
}

// NewCA creates a CA valid for a day, writing its certificate to a file in a
// temporary directory removed when the test ends.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: CA key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "ferry test CA", Organization: []string{"ferry tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testenv: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testenv: parse CA certificate: %v", err)
	}
	ca := &CA{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Pool:    x509.NewCertPool(),
		key:     key,
		dir:     t.TempDir(),
	}
	ca.Pool.AddCert(cert)
	ca.CertFile = filepath.Join(ca.dir, "ca.crt")
	writeFile(t, ca.CertFile, ca.CertPEM)
	return ca
}

// ServerCert issues a server certificate for hosts, each an IP address or a
// DNS name; with no hosts it covers 127.0.0.1 and localhost. The files are
// written to a fresh temporary directory.
func (ca *CA) ServerCert(t testing.TB, hosts ...string) *ServerCert {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: server key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"ferry tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testenv: server certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testenv: marshal server key: %v", err)
	}
	sc := &ServerCert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	sc.TLS, err = tls.X509KeyPair(sc.CertPEM, sc.KeyPEM)
	if err != nil {
		t.Fatalf("testenv: server key pair: %v", err)
	}
	dir := t.TempDir()
	sc.CertFile = filepath.Join(dir, "server.crt")
	sc.KeyFile = filepath.Join(dir, "server.key")
	writeFile(t, sc.CertFile, sc.CertPEM)
	writeFile(t, sc.KeyFile, sc.KeyPEM)
	return sc
}

// ClientTLSConfig returns a TLS client configuration trusting only ca.
func (ca *CA) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("testenv: serial number: %v", err)
	}
	return n
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
