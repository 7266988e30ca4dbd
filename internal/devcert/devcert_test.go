package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestGenerate(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, err := Generate(Options{Now: now}, "127.0.0.1", "", "0.0.0.0", "[::]", "192.0.2.7", "[2001:db8::1]", "Dev.Example", "dev.example", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	l := c.Leaf
	k, ok := l.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", l.PublicKey)
	}
	if _, ok := c.TLS.PrivateKey.(*ecdsa.PrivateKey); !ok || c.TLS.Leaf != l || len(c.TLS.Certificate) != 1 {
		t.Fatal("tls.Certificate is not the key and the leaf")
	}
	if !l.NotBefore.Equal(now.Add(-time.Hour)) || !l.NotAfter.Equal(now.Add(DefaultValidity)) {
		t.Errorf("validity %s – %s", l.NotBefore, l.NotAfter)
	}
	if DefaultValidity > 90*24*time.Hour {
		t.Errorf("DefaultValidity %s is not short", DefaultValidity)
	}
	if got, want := strings.Join(l.DNSNames, ","), "localhost,dev.example"; got != want {
		t.Errorf("DNS names %s, want %s", got, want)
	}
	if got, want := c.Hosts(), "localhost,dev.example,127.0.0.1,::1,192.0.2.7,2001:db8::1"; got != want {
		t.Errorf("Hosts() = %s, want %s", got, want)
	}
	if l.SerialNumber.Sign() <= 0 || l.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %s", l.SerialNumber)
	}
	if !l.IsCA || l.MaxPathLen != 0 || !l.MaxPathLenZero {
		t.Error("not a CA limited to itself")
	}
	if len(l.ExtKeyUsage) != 1 || l.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage %v", l.ExtKeyUsage)
	}
	if l.Subject.CommonName != "oxd development (self-signed)" {
		t.Errorf("CN %q", l.Subject.CommonName)
	}

	// It verifies as its own root for every name, at issue and until the
	// end of its validity, and not after.
	pool := x509.NewCertPool()
	pool.AddCert(l)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "192.0.2.7", "2001:db8::1", "dev.example"} {
		if _, err := l.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	for _, name := range []string{"example.com", "0.0.0.0", "127.0.0.2", "app.localhost"} {
		if _, err := l.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now}); err == nil {
			t.Errorf("valid for %s", name)
		}
	}
	if _, err := l.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", CurrentTime: now.Add(DefaultValidity + time.Second)}); err == nil {
		t.Error("valid after its validity")
	}
}

func TestGenerateOptions(t *testing.T) {
	c, err := Generate(Options{CommonName: "x", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore); d != 2*time.Hour {
		t.Errorf("validity %s, want backdate + 1h", d)
	}
	if c.Leaf.Subject.CommonName != "x" {
		t.Error(c.Leaf.Subject.CommonName)
	}
	if _, err := Generate(Options{Validity: -time.Hour}); err == nil {
		t.Error("a negative validity accepted")
	}
	for _, bad := range []string{"a b", "a..b", ".a", "a/b", "127.0.0.1:80", "host:8443", "é.example", "*.example"} {
		if _, err := Generate(Options{}, bad); err == nil {
			t.Errorf("host %q accepted", bad)
		}
	}
}

func TestSerialsDiffer(t *testing.T) {
	a, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 || a.Fingerprint() == b.Fingerprint() {
		t.Error("two certificates share a serial or fingerprint")
	}
	if a.TLS.PrivateKey.(*ecdsa.PrivateKey).Equal(b.TLS.PrivateKey) {
		t.Error("two certificates share a key")
	}
}

func TestPEMAndFingerprint(t *testing.T) {
	c, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(c.PEM())
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 || string(block.Bytes) != string(c.Leaf.Raw) {
		t.Fatal("PEM is not the certificate alone")
	}
	if strings.Contains(string(c.PEM()), "PRIVATE") {
		t.Fatal("PEM holds the key")
	}
	sum := sha256.Sum256(c.Leaf.Raw)
	fp := c.Fingerprint()
	if strings.ReplaceAll(fp, ":", "") != strings.ToUpper(hex.EncodeToString(sum[:])) || len(fp) != 32*3-1 {
		t.Errorf("fingerprint %s", fp)
	}
	if Fingerprint([]byte("abc")) != "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD" {
		t.Error("Fingerprint of a known input")
	}
}

// TestHandshake: a real TLS listener on loopback with the certificate,
// and a client trusting only it, for the names a client dials.
func TestHandshake(t *testing.T) {
	c, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{c.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.WriteString(conn, "ok")
			}()
		}
	}()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.PEM()) {
		t.Fatal("PEM not usable as a trust anchor")
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Errorf("handshake as %s: %v", name, err)
			continue
		}
		b, _ := io.ReadAll(conn)
		conn.Close()
		if string(b) != "ok" {
			t.Errorf("read %q", b)
		}
	}
	// A client that does not trust it refuses it.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err == nil {
		conn.Close()
		t.Fatal("an untrusted self-signed certificate was accepted")
	}
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		var ve *tls.CertificateVerificationError
		if !errors.As(err, &ve) {
			t.Errorf("error %v", err)
		}
	}
}
